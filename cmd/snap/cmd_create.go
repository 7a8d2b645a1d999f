package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"snap/internal/names"
	"snap/internal/pattern"
	"snap/internal/progress"
	"snap/repo"
	"snap/snapshot"
)

type createOptions struct {
	tags        []string
	host        string
	init        bool
	initOpts    initOptions
	compression string
	parent      string
	force       bool
	ignoreCtime bool
	atime       bool
	ignoreInode bool
	time        string

	exclude, iexclude, excludeFiles, iexcludeFiles []string
	excludeIfPresent                               []string
	excludeCaches, oneFileSystem                   bool
	excludeLargerThan                              string
	filesFrom                                      []string
	namesFrom                                      string
	iKnow                                          bool
}

func createCmd(g *globals) *cobra.Command {
	c, _ := newCreateCmd(g)
	return c
}

// newCreateCmd returns the create command and the options its flags set;
// run uses it to turn a job's settings into create's options through the
// same flags, so that the two never read a setting differently.
func newCreateCmd(g *globals) (*cobra.Command, *createOptions) {
	o := &createOptions{}
	c := &cobra.Command{
		Use:     "create [flags] PATH...",
		Aliases: []string{"backup"},
		Short:   "Back up paths into a new snapshot",
		Args:    cobra.ArbitraryArgs,
		RunE:    func(cmd *cobra.Command, args []string) error { return g.create(cmd, o, args) },
	}
	f := c.Flags()
	f.StringArrayVar(&o.tags, "tag", nil, "add a tag to the snapshot (repeatable)")
	f.StringVar(&o.host, "host", "", "host name to record (default: this machine's)")
	f.BoolVar(&o.init, "init", false, "create the repository first if there is none")
	f.StringVar(&o.compression, "compression", "", "compression for this run: auto, off, fastest, default, better, max (default: the repository's)")
	f.StringVar(&o.parent, "parent", "", "snapshot to compare with (default: latest with the same host and paths)")
	f.BoolVar(&o.force, "force", false, "read every file, even when unchanged since the parent")
	f.BoolVar(&o.ignoreCtime, "ignore-ctime", false, "ignore ctime changes when looking for changed files")
	f.BoolVar(&o.atime, "atime", false, "record the access times of files (off: reading a file would make the next backup rewrite its directory)")
	f.BoolVar(&o.ignoreInode, "ignore-inode", false, "ignore inode changes when looking for changed files")
	f.StringVar(&o.time, "time", "", "record this time instead of now (\"2006-01-02 15:04:05\", local time)")
	f.StringArrayVarP(&o.exclude, "exclude", "e", nil, "leave out paths matching `PATTERN` (repeatable; ** and a leading / work as in restic)")
	f.StringArrayVar(&o.iexclude, "iexclude", nil, "like --exclude, ignoring case")
	f.StringArrayVar(&o.excludeFiles, "exclude-file", nil, "read exclude patterns from `FILE` (repeatable)")
	f.StringArrayVar(&o.iexcludeFiles, "iexclude-file", nil, "like --exclude-file, ignoring case")
	f.StringArrayVar(&o.excludeIfPresent, "exclude-if-present", nil, "back up a directory empty (keeping `NAME`) when it holds a file NAME")
	f.BoolVar(&o.excludeCaches, "exclude-caches", false, "back up directories with a valid CACHEDIR.TAG empty")
	f.StringVar(&o.excludeLargerThan, "exclude-larger-than", "", "leave out files larger than `SIZE` (e.g. 500M, 2G)")
	f.BoolVarP(&o.oneFileSystem, "one-file-system", "x", false, "do not cross file system boundaries")
	f.StringArrayVar(&o.filesFrom, "files-from", nil, "read the paths to back up from `FILE`, one per line (repeatable)")
	f.StringVar(&o.namesFrom, "names-from", "", "for an eCryptfs lower tree: the mounted cleartext view `DIR`, to record a local map of the encrypted names (default: found in /proc/mounts)")
	f.BoolVar(&o.iKnow, "i-know", false, "do not warn about eCryptfs secrets or cleartext going to a remote repository")
	o.initOpts = defaultInitOptions()
	return c, o
}

// createInput is what create has checked and resolved before it touches
// the repository.
type createInput struct {
	paths  []string
	excl   func(string, bool) bool
	larger int64
	at     time.Time
	host   string
}

func (g *globals) create(cmd *cobra.Command, o *createOptions, args []string) error {
	ctx := cmd.Context()
	if len(args) == 0 && len(o.filesFrom) == 0 && g.jobs.job != nil {
		args = g.jobs.job.Sources // snap create --job NAME
	}
	in, err := g.createPrepare(o, args)
	if err != nil {
		return err
	}
	r, err := g.open(ctx, o.compression)
	if errors.Is(err, repo.ErrNoRepository) && o.init {
		r, err = g.initRepo(ctx, &o.initOpts)
		if err == nil && o.compression != "" {
			r.Close()
			r, err = g.open(ctx, o.compression)
		}
	}
	if err != nil {
		return err
	}
	defer r.Close()
	unlock, err := g.lock(ctx, r, "create")
	if err != nil {
		return err
	}
	defer unlock()

	sn, err := g.createSnapshot(ctx, r, o, in)
	if err != nil {
		return err
	}
	s := sn.Summary
	switch {
	case g.json:
		err = printJSON(g.stdout, map[string]any{
			"message_type": "summary", "snapshot_id": sn.ID.String(),
			"files_new": s.FilesNew, "files_changed": s.FilesChanged, "files_unchanged": s.FilesUnchanged,
			"dirs": s.Dirs, "bytes_read": s.BytesRead, "bytes_added": s.BytesAdded, "bytes_stored": s.BytesStored,
			"blobs_added": s.BlobsAdded, "total_size": s.TotalSize, "errors": s.Errors, "duration_s": s.Duration,
		})
	case !g.quiet:
		fmt.Fprintf(g.stdout, "snapshot %s saved: %d new, %d changed, %d unchanged files, %d dirs; read %s, added %s (%s stored) in %.1fs\n",
			sn.ID.Short(), s.FilesNew, s.FilesChanged, s.FilesUnchanged, s.Dirs,
			formatBytes(s.BytesRead), formatBytes(s.BytesAdded), formatBytes(s.BytesStored), s.Duration)
	}
	if err != nil {
		return err
	}
	return createPartial(sn)
}

// createPartial is the error of a snapshot that was saved without some
// files (each was reported when it failed), or nil.
func createPartial(sn *snapshot.Snapshot) error {
	if n := sn.Summary.Errors; n > 0 {
		return fmt.Errorf("snapshot %s saved, but %d files or directories could not be read: %w", sn.ID.Short(), n, errPartial)
	}
	return nil
}

// createPrepare checks create's arguments and options before the
// repository is touched: a wrong argument must not leave anything behind.
func (g *globals) createPrepare(o *createOptions, args []string) (*createInput, error) {
	for _, file := range o.filesFrom {
		cwd, _ := os.Getwd()
		list, err := pattern.ReadFilesFrom(file, cwd)
		if err != nil {
			return nil, fmt.Errorf("--files-from: %w", err)
		}
		args = append(args, list...)
	}
	if len(args) == 0 {
		return nil, errors.New("nothing to back up: give at least one PATH (or --files-from FILE)")
	}
	excl, err := o.excluder()
	if err != nil {
		return nil, err
	}
	var larger int64
	if o.excludeLargerThan != "" {
		if larger, err = pattern.ParseSize(o.excludeLargerThan); err != nil {
			return nil, fmt.Errorf("--exclude-larger-than %q: %w", o.excludeLargerThan, err)
		}
	}
	var paths []string
	for _, a := range args {
		p, err := filepath.Abs(a)
		if err != nil {
			return nil, err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return nil, fmt.Errorf("cannot back up %s: %w", a, err)
		}
		// A path given as a symlink to a directory (~/.Private on Ubuntu)
		// means the directory: back up what it points to.
		if fi.Mode()&os.ModeSymlink != 0 {
			if st, err := os.Stat(p); err == nil && st.IsDir() {
				if real, err := filepath.EvalSymlinks(p); err == nil {
					if !g.quiet && !g.json {
						fmt.Fprintf(g.stderr, "snap: note: %s is a symlink; backing up the directory it points to, %s\n", a, real)
					}
					p = real
				}
			}
		}
		paths = append(paths, p)
	}
	var at time.Time
	if o.time != "" {
		t, err := time.ParseInLocation("2006-01-02 15:04:05", o.time, time.Local)
		if err != nil {
			return nil, fmt.Errorf("--time %q: want \"2006-01-02 15:04:05\"", o.time)
		}
		at = t
	}
	if !o.iKnow {
		g.warnSecrets(paths, excl)
	}
	excl = g.excludeOwnRepository(paths, excl)
	host := o.host
	if host == "" {
		host, _ = os.Hostname()
	}
	return &createInput{paths: paths, excl: excl, larger: larger, at: at, host: host}, nil
}

// createSnapshot is the body of create: it writes one snapshot of in into
// r, which the caller has opened and locked, reporting unreadable files on
// stderr as it goes, and prints no summary.
func (g *globals) createSnapshot(ctx context.Context, r *repo.Repository, o *createOptions, in *createInput) (*snapshot.Snapshot, error) {
	paths, host, at, excl, larger := in.paths, in.host, in.at, in.excl, in.larger
	var parent *snapshot.Snapshot
	var err error
	if o.parent != "" {
		if parent, err = snapshot.Find(ctx, r, o.parent, snapshot.Filter{}); err != nil {
			return nil, fmt.Errorf("--parent: %w", err)
		}
	} else {
		parent, err = findParent(ctx, r, host, paths)
		if err != nil {
			return nil, err
		}
	}
	var mu sync.Mutex
	opts := snapshot.CreateOptions{
		Paths: paths, Tags: o.tags, Host: host, Username: currentUser(), Time: at,
		Parent: parent, ProgramVersion: version,
		Force: o.force, IgnoreCtime: o.ignoreCtime, IgnoreInode: o.ignoreInode, ATime: o.atime,
		Exclude: excl, ExcludeLargerThan: larger, ExcludeIfPresent: o.excludeIfPresent,
		ExcludeCaches: o.excludeCaches, OneFileSystem: o.oneFileSystem,
		OnNotice: func(path, msg string) {
			if !g.quiet && !g.json {
				mu.Lock()
				defer mu.Unlock()
				fmt.Fprintf(g.stderr, "snap: note: %s: %s\n", path, msg)
			}
		},
		OnError: func(path string, err error) {
			mu.Lock()
			defer mu.Unlock()
			if g.json {
				printJSON(g.stderr, map[string]any{"message_type": "error", "path": path, "error": err.Error()})
			} else {
				fmt.Fprintf(g.stderr, "snap: cannot read %s: %v\n", path, unwrapPath(err))
			}
		},
	}
	var counter progress.Counter
	mode := progress.ChooseMode(g.json, g.quiet, g.stderr)
	scanCtx, stopScan := context.WithCancel(ctx)
	defer stopScan()
	if mode != progress.None {
		opts.Progress = counter.Done
		go func() {
			// The scan for totals walks the tree a second time, which is
			// all the work of a backup that finds nothing changed (a
			// third of its time): it starts only once the backup has run
			// long enough for a percentage to matter.
			select {
			case <-time.After(300 * time.Millisecond):
			case <-scanCtx.Done():
				return
			}
			snapshot.Scan(scanCtx, opts, func(files, bytes int64) {
				counter.FilesTotal.Add(files)
				counter.BytesTotal.Add(bytes)
			})
			counter.TotalKnown.Store(scanCtx.Err() == nil)
		}()
	}
	rep := progress.Start(ctx, mode, g.stdout, g.stderr, &counter, "backing up")
	sn, err := snapshot.Create(ctx, r, opts)
	stopScan()
	rep.Stop()
	if err != nil {
		return nil, err
	}
	if sn.SourceKind == snapshot.SourceECryptfsLower {
		g.recordNames(ctx, r, sn, o.namesFrom, paths)
	}
	return sn, nil
}

// recordNames learns the cleartext names of a lower tree just backed up,
// from --names-from or the eCryptfs mount whose lower directory it is. A
// failure only costs readable names, so it is a warning.
func (g *globals) recordNames(ctx context.Context, r *repo.Repository, sn *snapshot.Snapshot, from string, paths []string) {
	if from == "" && len(paths) == 1 {
		from, _ = names.LowerMount("/proc/mounts", paths[0])
	}
	if from == "" {
		return
	}
	n, err := g.learnNames(ctx, r, sn, from)
	if err != nil {
		fmt.Fprintf(g.stderr, "snap: warning: could not record cleartext names from %s: %v\n", from, err)
		return
	}
	if !g.quiet && !g.json {
		fmt.Fprintf(g.stderr, "snap: recorded the cleartext names of %d entries in the local name map (never sent to the repository)\n", n)
	}
}

// excludeOwnRepository leaves a local repository out of a backup that
// contains it (backing up / into /mnt/backup/repo): backing up the
// repository into itself would only grow it on every run.
func (g *globals) excludeOwnRepository(paths []string, excl func(string, bool) bool) func(string, bool) bool {
	if g.repo == "" || strings.Contains(g.repo, ":") {
		return excl
	}
	repoDir, err := filepath.Abs(g.repo)
	if err != nil {
		return excl
	}
	for _, p := range paths {
		if strings.HasPrefix(repoDir, strings.TrimSuffix(p, "/")+"/") {
			if !g.quiet && !g.json {
				fmt.Fprintf(g.stderr, "snap: note: the repository %s is inside %s; it is left out of the backup\n", repoDir, p)
			}
			return func(path string, isDir bool) bool {
				return path == repoDir || excl != nil && excl(path, isDir)
			}
		}
	}
	return excl
}

// warnSecrets warns when a backup would carry the eCryptfs wrapped
// passphrase (protected only by the login password) or a mounted cleartext
// view to a repository on another machine.
func (g *globals) warnSecrets(paths []string, excluded func(string, bool) bool) {
	isExcluded := func(p string) bool { return excluded != nil && excluded(p, false) }
	for _, p := range paths {
		for _, c := range []string{p, filepath.Join(p, "wrapped-passphrase"), filepath.Join(p, ".ecryptfs", "wrapped-passphrase")} {
			if filepath.Base(c) != "wrapped-passphrase" || filepath.Base(filepath.Dir(c)) != ".ecryptfs" {
				continue
			}
			if _, err := os.Lstat(c); err == nil && !isExcluded(c) {
				fmt.Fprintf(g.stderr, "snap: warning: %s is in the backup; it is protected only by your login password, so keep it off untrusted storage (--exclude %s); --i-know silences this\n", c, c)
			}
		}
	}
	if !strings.HasPrefix(g.repo, "sftp:") && !strings.HasPrefix(g.repo, "s3:") {
		return
	}
	mounts, _ := names.EcryptfsMounts("/proc/mounts")
	for _, p := range paths {
		for _, m := range mounts {
			if p == m || strings.HasPrefix(p, strings.TrimSuffix(m, "/")+"/") || strings.HasPrefix(m, strings.TrimSuffix(p, "/")+"/") {
				fmt.Fprintf(g.stderr, "snap: warning: %s is (or holds) the cleartext view of an eCryptfs mount, and the repository %s is remote: back up the lower directory instead; --i-know silences this\n", p, g.repo)
			}
		}
	}
}

// excluder combines the exclude options into one function, or nil.
func (o *createOptions) excluder() (func(string, bool) bool, error) {
	cs, ci := o.exclude, o.iexclude
	for _, f := range o.excludeFiles {
		l, err := pattern.ReadPatternFile(f)
		if err != nil {
			return nil, fmt.Errorf("--exclude-file: %w", err)
		}
		cs = append(cs, l...)
	}
	for _, f := range o.iexcludeFiles {
		l, err := pattern.ReadPatternFile(f)
		if err != nil {
			return nil, fmt.Errorf("--iexclude-file: %w", err)
		}
		ci = append(ci, l...)
	}
	list, err := patternList(cs, ci)
	if err != nil {
		return nil, fmt.Errorf("--exclude: %w", err)
	}
	if list.Empty() {
		return nil, nil
	}
	return list.Match, nil
}

// findParent picks the latest snapshot of the same host and paths.
func findParent(ctx context.Context, r *repo.Repository, host string, paths []string) (*snapshot.Snapshot, error) {
	all, err := snapshot.List(ctx, r)
	if err != nil {
		return nil, err
	}
	for i := len(all) - 1; i >= 0; i-- {
		if all[i].Hostname == host && slices.Equal(all[i].Paths, paths) {
			return all[i], nil
		}
	}
	return nil, nil
}

// unwrapPath drops the path from *fs.PathError messages, since the path is printed already.
func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
