package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"snap/internal/testtree"
)

// writeFiles creates files (path -> content) under dir.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for p, c := range files {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// listTree returns the slash paths of all entries under dir, sorted.
func listTree(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		if rel, _ := filepath.Rel(dir, p); rel != "." {
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	return out
}

func TestCreateExcludes(t *testing.T) {
	src := filepath.Join(t.TempDir(), "home")
	writeFiles(t, src, map[string]string{
		"keep.txt":                "k",
		"build/out.o":             "o",
		"src/main.o":              "o",
		"src/main.go":             "g",
		"Cache/x":                 "c",
		"cachedir/CACHEDIR.TAG":   "Signature: 8a477f597d28d172789f06886806bc55\n# a cache\n",
		"cachedir/blob":           "c",
		"fakecache/CACHEDIR.TAG":  "not a signature",
		"fakecache/kept":          "k",
		"marked/.nobackup":        "",
		"marked/secret":           "s",
		"big.iso":                 strings.Repeat("x", 3000),
		"deep/a/b/node_modules/m": "m",
		"anchored/top.tmp":        "t",
		"other/anchored/top.tmp":  "t",
	})
	exfile := filepath.Join(t.TempDir(), "excludes")
	os.WriteFile(exfile, []byte("# comment\n\n**/node_modules\n"), 0o644)
	repo := filepath.Join(t.TempDir(), "repo")
	mustSnap(t, "init", "-r", repo)
	mustSnap(t, "create", "-r", repo, src,
		"--exclude", "*.o", "--iexclude", "cache", "--exclude-caches", "--exclude-if-present", ".nobackup",
		"--exclude-larger-than", "2K", "--exclude-file", exfile, "--exclude", src+"/anchored")
	out := t.TempDir()
	mustSnap(t, "restore", "-r", repo, "latest", "--target", out)
	got := strings.Join(listTree(t, filepath.Join(out, "home")), " ")
	for _, p := range []string{"keep.txt", "src/main.go", "cachedir/CACHEDIR.TAG", "fakecache/kept", "marked/.nobackup", "other/anchored/top.tmp", "deep/a/b"} {
		if !strings.Contains(" "+got+" ", " "+p+" ") {
			t.Errorf("%s missing from the backup: %s", p, got)
		}
	}
	for _, p := range []string{"build/out.o", "src/main.o", "Cache", "cachedir/blob", "marked/secret", "big.iso", "node_modules", " anchored"} {
		if strings.Contains(" "+got, p) {
			t.Errorf("%s was backed up despite the excludes: %s", p, got)
		}
	}
}

func TestFilesFrom(t *testing.T) {
	src := t.TempDir()
	writeFiles(t, src, map[string]string{"a/one": "1", "b/two": "2", "c/three": "3"})
	list := filepath.Join(t.TempDir(), "list")
	os.WriteFile(list, []byte("# paths\n"+filepath.Join(src, "a")+"\n"+filepath.Join(src, "b/two")+"\n"), 0o644)
	repo := filepath.Join(t.TempDir(), "repo")
	mustSnap(t, "init", "-r", repo)
	mustSnap(t, "create", "-r", repo, "--files-from", list)
	out := t.TempDir()
	mustSnap(t, "restore", "-r", repo, "latest", "--target", out)
	if got := strings.Join(listTree(t, out), " "); got != "a a/one two" {
		t.Fatalf("restored %q, want the listed paths only", got)
	}
}

func TestRestoreOptions(t *testing.T) {
	src := filepath.Join(t.TempDir(), "data")
	writeFiles(t, src, map[string]string{"docs/a.txt": "a", "docs/b.md": "b", "img/c.png": "c", "top.txt": "t"})
	repo := filepath.Join(t.TempDir(), "repo")
	mustSnap(t, "init", "-r", repo)
	mustSnap(t, "create", "-r", repo, src)

	// A subpath, and include patterns.
	out := t.TempDir()
	mustSnap(t, "restore", "-r", repo, "latest:/data/docs", "--target", out)
	if got := strings.Join(listTree(t, out), " "); got != "a.txt b.md" {
		t.Errorf("restore SNAP:/data/docs gave %q", got)
	}
	out = t.TempDir()
	mustSnap(t, "restore", "-r", repo, "latest", "--target", out, "--include", "*.txt")
	if got := strings.Join(listTree(t, out), " "); !strings.Contains(got, "data/docs/a.txt") || !strings.Contains(got, "data/top.txt") || strings.Contains(got, "b.md") || strings.Contains(got, "c.png") {
		t.Errorf("--include '*.txt' restored %q", got)
	}
	out = t.TempDir()
	mustSnap(t, "restore", "-r", repo, "latest", "--target", out, "--exclude", "/data/img")
	if got := strings.Join(listTree(t, out), " "); strings.Contains(got, "img") || !strings.Contains(got, "b.md") {
		t.Errorf("--exclude /data/img restored %q", got)
	}

	// --delete with --dry-run lists and keeps; without it removes exactly the extras.
	out = t.TempDir()
	mustSnap(t, "restore", "-r", repo, "latest", "--target", out)
	writeFiles(t, out, map[string]string{"data/extra.txt": "x", "data/docs/old/stale": "s"})
	os.WriteFile(filepath.Join(out, "data/top.txt"), []byte("changed locally"), 0o644)
	dry := mustSnap(t, "restore", "-r", repo, "latest", "--target", out, "--delete", "--dry-run")
	for _, want := range []string{"delete    data/extra.txt", "delete    data/docs/old", "restore   data/top.txt", "unchanged data/docs/a.txt"} {
		if !strings.Contains(dry.stdout, want) {
			t.Errorf("dry run does not say %q:\n%s", want, dry.stdout)
		}
	}
	if _, err := os.Stat(filepath.Join(out, "data/extra.txt")); err != nil {
		t.Errorf("--dry-run deleted a file: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(out, "data/top.txt")); string(b) != "changed locally" {
		t.Error("--dry-run rewrote a file")
	}
	mustSnap(t, "restore", "-r", repo, "latest", "--target", out, "--delete", "--verify")
	compareTrees(t, src, filepath.Join(out, "data"))

	// --overwrite never keeps a changed file; always rewrites it.
	os.WriteFile(filepath.Join(out, "data/top.txt"), []byte("mine"), 0o644)
	mustSnap(t, "restore", "-r", repo, "latest", "--target", out, "--overwrite", "never")
	if b, _ := os.ReadFile(filepath.Join(out, "data/top.txt")); string(b) != "mine" {
		t.Error("--overwrite never replaced a file")
	}
	mustSnap(t, "restore", "-r", repo, "latest", "--target", out, "--overwrite", "always")
	if b, _ := os.ReadFile(filepath.Join(out, "data/top.txt")); string(b) != "t" {
		t.Error("--overwrite always kept a changed file")
	}
	if r := snap(t, "restore", "-r", repo, "latest", "--target", out, "--overwrite", "sometimes"); r.code != 1 {
		t.Errorf("a bad --overwrite value: exit %d, want 1", r.code)
	}
}

func TestRestoreNeverFollowsSymlinksInTarget(t *testing.T) {
	src := filepath.Join(t.TempDir(), "data")
	writeFiles(t, src, map[string]string{"dir/file": "from snapshot", "f": "f"})
	repo := filepath.Join(t.TempDir(), "repo")
	mustSnap(t, "init", "-r", repo)
	mustSnap(t, "create", "-r", repo, src)
	outside := t.TempDir()
	os.WriteFile(filepath.Join(outside, "file"), []byte("precious"), 0o644)
	out := t.TempDir()
	os.MkdirAll(filepath.Join(out, "data"), 0o755)
	os.Symlink(outside, filepath.Join(out, "data", "dir"))
	os.Symlink(filepath.Join(outside, "file"), filepath.Join(out, "data", "f"))
	mustSnap(t, "restore", "-r", repo, "latest", "--target", out, "--overwrite", "always")
	if b, _ := os.ReadFile(filepath.Join(outside, "file")); string(b) != "precious" {
		t.Fatal("restore wrote through a symlink in the target")
	}
	compareTrees(t, src, filepath.Join(out, "data"))
}

func TestRestoreAsNonRootWarnsOnce(t *testing.T) {
	skipUnlessRoot(t)
	src := filepath.Join(t.TempDir(), "data")
	writeFiles(t, src, map[string]string{"a": "1", "b": "2", "c/d": "3"})
	os.Lchown(filepath.Join(src, "a"), 1234, 1234)
	repo := filepath.Join(t.TempDir(), "repo")
	mustSnap(t, "init", "-r", repo)
	mustSnap(t, "create", "-r", repo, src)
	os.Chmod(filepath.Dir(repo), 0o755)
	filepath.Walk(repo, func(p string, fi os.FileInfo, _ error) error {
		return os.Chmod(p, fi.Mode()|0o555)
	})
	out := t.TempDir()
	os.Chmod(out, 0o777)
	os.Chmod(filepath.Dir(out), 0o755)
	cmd := exec.Command(snapBin, "restore", "-r", repo, "latest", "--target", out)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("restore as nobody: %v\n%s", err, stderr.String())
	}
	if n := strings.Count(stderr.String(), "owner"); n != 1 {
		t.Errorf("want exactly one warning about owners, got %d:\n%s", n, stderr.String())
	}
	compareTrees(t, src, filepath.Join(out, "data"))
}

func TestInterruptKeepsStoredData(t *testing.T) {
	if testing.Short() {
		t.Skip("backs up 200 MiB")
	}
	src := filepath.Join(t.TempDir(), "big")
	os.Mkdir(src, 0o755)
	for i := 0; i < 4; i++ {
		if err := testtree.RandomFile(filepath.Join(src, "f"+string(rune('a'+i))), uint64(i), 50<<20); err != nil {
			t.Fatal(err)
		}
	}
	repo := filepath.Join(t.TempDir(), "repo")
	mustSnap(t, "init", "-r", repo)
	cmd := exec.Command(snapBin, "create", "-r", repo, src)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Interrupt once some packs are durable.
	deadline := time.Now().Add(20 * time.Second)
	for packBytes(t, repo) < 40<<20 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGINT)
	err := cmd.Wait()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 130 {
		t.Fatalf("create after SIGINT: %v, want exit 130\n%s", err, stderr.String())
	}
	if ents, _ := os.ReadDir(filepath.Join(repo, "snapshots")); len(ents) != 0 {
		t.Fatal("an interrupted create wrote a snapshot")
	}
	stored := packBytes(t, repo)
	s := create(t, repo, src)
	if s.BytesAdded > 200<<20-stored+16<<20 {
		t.Errorf("after an interrupt that had stored %d bytes, the next run added %d of 200 MiB: stored data not reused", stored, s.BytesAdded)
	}
	out := t.TempDir()
	mustSnap(t, "restore", "-r", repo, "latest", "--target", out)
	compareTrees(t, src, filepath.Join(out, "big"))
}

func TestNoChangeIncrementalReadsNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 100,000 files")
	}
	src := filepath.Join(t.TempDir(), "many")
	os.Mkdir(src, 0o755)
	for d := 0; d < 400; d++ {
		dir := filepath.Join(src, "d"+itoa(d))
		os.Mkdir(dir, 0o755)
		for f := 0; f < 250; f++ {
			if err := os.WriteFile(filepath.Join(dir, "f"+itoa(f)), []byte(itoa(d*1000+f)), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	repo := filepath.Join(t.TempDir(), "repo")
	mustSnap(t, "init", "-r", repo)
	first := create(t, repo, src)
	if first.FilesNew != 100000 {
		t.Fatalf("first backup: %d new files, want 100000", first.FilesNew)
	}
	second := create(t, repo, src)
	if second.BytesRead != 0 || second.FilesUnchanged != 100000 || second.BytesAdded != 0 {
		t.Fatalf("no-change backup read %d bytes, found %d unchanged, added %d; want 0, 100000, 0", second.BytesRead, second.FilesUnchanged, second.BytesAdded)
	}
	// Touching one file (new mtime, same bytes) costs one read and stores nothing but trees.
	p := filepath.Join(src, "d7", "f7")
	now := time.Now()
	os.Chtimes(p, now, now)
	third := create(t, repo, src)
	if third.BytesRead != int64(len(itoa(7007))) || third.FilesUnchanged != 100000 {
		t.Errorf("after touching one file: read %d bytes, %d unchanged; want %d bytes read", third.BytesRead, third.FilesUnchanged, len(itoa(7007)))
	}
	var js []map[string]any
	json.Unmarshal([]byte(mustSnap(t, "snapshots", "-r", repo, "--json").stdout), &js)
	if len(js) != 3 {
		t.Errorf("want 3 snapshots, got %d", len(js))
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func TestRepositoryInsideSourceIsLeftOut(t *testing.T) {
	home := filepath.Join(t.TempDir(), "home")
	writeFiles(t, home, map[string]string{"notes.txt": "n"})
	repo := filepath.Join(home, "backup-repo")
	mustSnap(t, "init", "-r", repo)
	r := mustSnap(t, "create", "-r", repo, home)
	if !strings.Contains(r.stderr, "left out of the backup") {
		t.Errorf("no note about the repository inside the source: %q", r.stderr)
	}
	out := t.TempDir()
	mustSnap(t, "restore", "-r", repo, "latest", "--target", out)
	if got := strings.Join(listTree(t, out), " "); got != "home home/notes.txt" {
		t.Errorf("restored %q; the repository must not be in its own backup", got)
	}
}
