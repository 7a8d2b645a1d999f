package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// repo is one tool's repository in one repetition. Every repetition gets a
// fresh one: deleting the previous repository right before timing would
// measure the file system's slow inode allocation after mass deletes.
type repo struct {
	dir   string   // the repository
	state string   // the tool's cache/config directory, kept apart from $HOME
	env   []string // environment for every command on this repository
	snaps []string // snapshot names, oldest first (borg archives, rsync trees)
	// xattrs asks rsync for -X: an eCryptfs tree written with
	// ecryptfs_xattr_metadata keeps every file's header in an xattr, which
	// restic, borg and snap back up by default.
	xattrs bool
}

// tool drives one backup program. Commands are built, not run, so the
// harness times them all the same way.
type tool struct {
	name string
	bin  string
	// setup prepares repo's environment (before init).
	setup func(t *tool, r *repo)
	// init creates an empty repository; not timed.
	init func(t *tool, r *repo) command
	// backup backs up tree into r as snapshot name (the next entry of r.snaps).
	backup func(t *tool, r *repo, tree, name string) command
	// restore restores the latest snapshot of tree into target and returns
	// where the tree's root lands.
	restore func(t *tool, r *repo, tree, target string) (command, string)
	// prune keeps the last keep snapshots and frees the space of the rest.
	prune func(t *tool, r *repo, keep int) command
	// okExit lists non-zero exit codes that mean success with warnings.
	okExit []int
}

func (t *tool) cmd(r *repo, args ...string) command {
	return command{argv: append([]string{t.bin}, args...), env: r.env}
}

// rel strips the leading slash: restic and borg restore absolute paths
// below the target directory.
func rel(p string) string { return strings.TrimPrefix(p, "/") }

var tools = map[string]*tool{
	"snap": {
		name: "snap",
		setup: func(t *tool, r *repo) {
			r.env = []string{"XDG_CACHE_HOME=" + r.state + "/cache", "XDG_CONFIG_HOME=" + r.state + "/config"}
		},
		init: func(t *tool, r *repo) command { return t.cmd(r, "init", "-r", r.dir) },
		backup: func(t *tool, r *repo, tree, _ string) command {
			return t.cmd(r, "create", "-r", r.dir, "--json", tree)
		},
		restore: func(t *tool, r *repo, tree, target string) (command, string) {
			// snap names the restored root by the last element of the path.
			return t.cmd(r, "restore", "-r", r.dir, "latest", "--target", target),
				filepath.Join(target, filepath.Base(tree))
		},
		prune: func(t *tool, r *repo, keep int) command {
			return t.cmd(r, "forget", "-r", r.dir, "--keep-last", fmt.Sprint(keep), "--prune")
		},
	},
	"restic": {
		name: "restic",
		setup: func(t *tool, r *repo) {
			r.env = []string{"RESTIC_PASSWORD=x", "RESTIC_CACHE_DIR=" + r.state}
		},
		init: func(t *tool, r *repo) command { return t.cmd(r, "-r", r.dir, "init") },
		backup: func(t *tool, r *repo, tree, _ string) command {
			// A fixed host keeps restic's parent-snapshot lookup independent
			// of the machine's name.
			return t.cmd(r, "-r", r.dir, "backup", "--host", "bench", tree)
		},
		restore: func(t *tool, r *repo, tree, target string) (command, string) {
			return t.cmd(r, "-r", r.dir, "restore", "latest", "--target", target),
				filepath.Join(target, rel(tree))
		},
		prune: func(t *tool, r *repo, keep int) command {
			return t.cmd(r, "-r", r.dir, "forget", "--keep-last", fmt.Sprint(keep), "--prune")
		},
	},
	"borg": {
		name: "borg",
		setup: func(t *tool, r *repo) {
			// BORG_BASE_DIR holds borg's cache, config and security dirs, which
			// otherwise pile up in $HOME, one per repository.
			r.env = []string{"BORG_BASE_DIR=" + r.state,
				"BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes", "BORG_RELOCATED_REPO_ACCESS_IS_OK=yes"}
		},
		init: func(t *tool, r *repo) command { return t.cmd(r, "init", "--encryption=none", r.dir) },
		backup: func(t *tool, r *repo, tree, name string) command {
			return t.cmd(r, "create", r.dir+"::"+name, tree)
		},
		restore: func(t *tool, r *repo, tree, target string) (command, string) {
			c := t.cmd(r, "extract", r.dir+"::"+r.snaps[len(r.snaps)-1])
			c.dir = target // borg extracts into the working directory
			return c, filepath.Join(target, rel(tree))
		},
		prune: func(t *tool, r *repo, keep int) command {
			// borg 1.2's prune only marks; compact frees the space.
			return command{env: r.env, argv: []string{"sh", "-c",
				`"$1" prune --keep-last "$2" "$3" && "$1" compact "$3"`, "prune", t.bin, fmt.Sprint(keep), r.dir}}
		},
		okExit: []int{1}, // borg: 1 = warning (e.g. a file changed while read)
	},
	"rsync": {
		// The dirvish method: each backup is a full tree, unchanged files
		// hard-linked to the previous tree.
		name:  "rsync",
		setup: func(t *tool, r *repo) {},
		init: func(t *tool, r *repo) command {
			return command{argv: []string{"mkdir", "-p", r.dir}}
		},
		backup: func(t *tool, r *repo, tree, name string) command {
			args := []string{"-aH"}
			if r.xattrs {
				args = append(args, "-X")
			}
			if n := len(r.snaps); n > 0 {
				args = append(args, "--link-dest="+filepath.Join(r.dir, r.snaps[n-1]))
			}
			args = append(args, tree+"/", filepath.Join(r.dir, name)+"/")
			return t.cmd(r, args...)
		},
		restore: func(t *tool, r *repo, tree, target string) (command, string) {
			root := filepath.Join(target, filepath.Base(tree))
			return t.cmd(r, "-aH", filepath.Join(r.dir, r.snaps[len(r.snaps)-1])+"/", root+"/"), root
		},
		prune: func(t *tool, r *repo, keep int) command {
			argv := []string{"rm", "-rf"}
			for _, s := range r.snaps[:max(0, len(r.snaps)-keep)] {
				argv = append(argv, filepath.Join(r.dir, s))
			}
			return command{argv: argv}
		},
		okExit: []int{24}, // rsync: 24 = some source files vanished
	},
}

// toolOrder is the canonical order of tools (and of table rows).
var toolOrder = []string{"snap", "restic", "borg", "rsync"}

// findBin returns dir/name if it is executable, else name from $PATH.
func findBin(dir, name string) (string, error) {
	if dir != "" {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return exec.LookPath(name)
}

// version returns a tool's version line for the report header.
func version(t *tool) string {
	var out []byte
	switch t.name {
	case "snap":
		return "snap (this tree)"
	case "restic":
		out, _ = exec.Command(t.bin, "version").Output()
	case "borg":
		out, _ = exec.Command(t.bin, "--version").Output()
	case "rsync":
		out, _ = exec.Command(t.bin, "--version").Output()
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	if t.name == "restic" {
		// "restic 0.19.1 compiled with go1.26.8 on linux/amd64"
		line, _, _ = strings.Cut(line, " compiled")
	}
	if t.name == "rsync" {
		line = strings.Join(strings.Fields(line)[:min(3, len(strings.Fields(line)))], " ")
	}
	return line
}
