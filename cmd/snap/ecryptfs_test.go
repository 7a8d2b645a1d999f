package main

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"snap/internal/ecryptfs"
)

// cipherHome builds an eCryptfs-like lower tree and a stand-in for its
// mounted cleartext view: the view's files are hard links to the lower files,
// so that, as on a real mount, a cleartext file has its lower file's inode.
func cipherHome(t *testing.T, opts ecryptfs.Options) (tree *ecryptfs.Tree, lower, view string) {
	t.Helper()
	base := t.TempDir()
	lower = filepath.Join(base, ".Private")
	view = filepath.Join(base, "view")
	if err := os.Mkdir(lower, 0o700); err != nil {
		t.Fatal(err)
	}
	tree, err := ecryptfs.NewTree(lower, 42, opts)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{
		"Documents/thesis-draft.odt":  bytes.Repeat([]byte("chapter one "), 3000),
		"Documents/secret-plans.txt":  []byte("take over the world\n"),
		"Mail/inbox.sqlite":           bytes.Repeat([]byte("row-data-"), 500000), // 4.5 MB, a database
		"Pictures/holiday-beach.jpeg": bytes.Repeat([]byte{0xff, 0xd8, 0x42}, 20000),
	}
	for p, data := range files {
		if err := tree.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(view, 0o700); err != nil {
		t.Fatal(err)
	}
	for lowerRel, clearRel := range tree.Map() {
		lp := filepath.Join(lower, lowerRel)
		fi, err := os.Lstat(lp)
		if err != nil {
			t.Fatal(err)
		}
		vp := filepath.Join(view, clearRel)
		os.MkdirAll(filepath.Dir(vp), 0o700)
		if fi.Mode().IsRegular() {
			if err := os.Link(lp, vp); err != nil {
				t.Fatal(err)
			}
		}
	}
	return tree, lower, view
}

// cleartextNames are the names that must never reach a repository.
var cleartextNames = []string{"thesis-draft", "secret-plans", "inbox.sqlite", "holiday-beach", "Documents", "Pictures"}

func TestECryptfsNamesStayLocal(t *testing.T) {
	cache := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", cache)
	tree, lower, view := cipherHome(t, ecryptfs.Options{})
	repo := filepath.Join(t.TempDir(), "repo")
	mustSnap(t, "init", "-r", repo)
	// Nine daily backups: the first nine days ago, with the secret plans.
	day := func(n int) string { return time.Now().AddDate(0, 0, -n).Format("2006-01-02 15:04:05") }
	r := mustSnap(t, "create", "-r", repo, lower, "--names-from", view, "--time", day(9))
	if !strings.Contains(r.stderr, "recorded the cleartext names") {
		t.Errorf("create did not record names: %q", r.stderr)
	}
	var list []map[string]any
	json.Unmarshal([]byte(mustSnap(t, "snapshots", "-r", repo, "--json").stdout), &list)
	if len(list) != 1 || list[0]["source_kind"] != "ecryptfs-lower" {
		t.Fatalf("snapshot not recognised as an eCryptfs lower tree: %v", list)
	}

	// Listings show cleartext names from the local map, as asked.
	both := mustSnap(t, "ls", "-r", repo, "latest", "-R").stdout
	if !strings.Contains(both, "/.Private/Documents/thesis-draft.odt  [/.Private/ECRYPTFS_FNEK_ENCRYPTED.") {
		t.Errorf("ls --names both:\n%s", both)
	}
	clear := mustSnap(t, "ls", "-r", repo, "latest", "-R", "--names", "clear").stdout
	if !strings.Contains(clear, "/.Private/Mail/inbox.sqlite\n") || strings.Contains(clear, "ECRYPTFS_FNEK") {
		t.Errorf("ls --names clear:\n%s", clear)
	}
	cipher := mustSnap(t, "ls", "-r", repo, "latest", "-R", "--names", "cipher").stdout
	if strings.Contains(cipher, "thesis") {
		t.Errorf("ls --names cipher shows cleartext:\n%s", cipher)
	}
	// find by cleartext name.
	found := mustSnap(t, "find", "-r", repo, "thesis*")
	if !strings.Contains(found.stdout, "Documents/thesis-draft.odt") {
		t.Errorf("find by cleartext name:\n%s", found.stdout)
	}

	// Eight more days without the secret plans; forget --keep-daily 7
	// --prune --dry-run names what would be lost, in cleartext.
	if err := tree.Remove("Documents/secret-plans.txt"); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(view, "Documents", "secret-plans.txt"))
	for n := 8; n >= 1; n-- {
		mustSnap(t, "create", "-r", repo, lower, "--names-from", view, "--time", day(n))
	}
	dry := mustSnap(t, "forget", "-r", repo, "--keep-daily", "7", "--prune", "--dry-run")
	if !strings.Contains(dry.stdout, "secret-plans.txt") || !strings.Contains(dry.stdout, "/.Private/Documents/") {
		t.Errorf("forget --prune --dry-run does not name the lost file in cleartext:\n%s", dry.stdout)
	}

	// Not a byte of any cleartext name is in the repository.
	filepath.WalkDir(repo, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range cleartextNames {
			if bytes.Contains(data, []byte(name)) {
				t.Errorf("cleartext name %q found in %s", name, p)
			}
		}
		return nil
	})
	// The map is private to this user.
	maps, _ := filepath.Glob(filepath.Join(cache, "snap", "*", "ecryptfs-names.json"))
	if len(maps) != 1 {
		t.Fatalf("name maps in the cache: %v", maps)
	}
	if fi, _ := os.Stat(maps[0]); fi.Mode().Perm() != 0o600 {
		t.Errorf("name map mode %v, want 0600", fi.Mode().Perm())
	}

	// Without a map, output says the names are encrypted.
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	bare := mustSnap(t, "ls", "-r", repo, "latest")
	if !strings.Contains(bare.stderr, "names are encrypted") {
		t.Errorf("ls without a map does not say names are encrypted: %q", bare.stderr)
	}
}

func TestECryptfsPageEditStoresLittle(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	tree, lower, _ := cipherHome(t, ecryptfs.Options{})
	repo := filepath.Join(t.TempDir(), "repo")
	mustSnap(t, "init", "-r", repo)
	create(t, repo, lower)
	// One 4 KiB page in the middle of the 4.5 MB database, rewritten in place.
	if err := tree.WriteAt("Mail/inbox.sqlite", 2<<20, bytes.Repeat([]byte("X"), 4096)); err != nil {
		t.Fatal(err)
	}
	before := packBytes(t, repo)
	s := create(t, repo, lower)
	grown := packBytes(t, repo) - before
	// The changed extent (a 4 KiB piece), the rewritten header,
	// one content list, and the trees on the path: far from a whole-file copy.
	if s.FilesChanged != 1 || grown > 40<<10 {
		t.Errorf("a one-page edit changed %d files and grew the repository by %d bytes; want 1 file and < 40 KiB", s.FilesChanged, grown)
	}
	out := t.TempDir()
	mustSnap(t, "restore", "-r", repo, "latest", "--target", out)
	compareTrees(t, lower, filepath.Join(out, ".Private"))
}

func TestECryptfsXattrHeadersRestored(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	probe := filepath.Join(t.TempDir(), "probe")
	os.WriteFile(probe, nil, 0o600)
	if err := unix.Setxattr(probe, "user.snap-probe", []byte("x"), 0); err != nil {
		t.Skipf("the test file system does not take user xattrs (%v)", err)
	}
	_, lower, _ := cipherHome(t, ecryptfs.Options{XattrMetadata: true})
	repo := filepath.Join(t.TempDir(), "repo")
	mustSnap(t, "init", "-r", repo)
	create(t, repo, lower)
	out := t.TempDir()
	mustSnap(t, "restore", "-r", repo, "latest", "--target", out)
	n := 0
	filepath.WalkDir(lower, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		rel, _ := filepath.Rel(lower, p)
		want := make([]byte, 8192)
		k, err := unix.Getxattr(p, ecryptfs.XattrName, want)
		if err != nil {
			t.Fatalf("source %s has no header xattr: %v", rel, err)
		}
		got := make([]byte, 8192)
		g, err := unix.Getxattr(filepath.Join(out, ".Private", rel), ecryptfs.XattrName, got)
		if err != nil || !bytes.Equal(got[:g], want[:k]) {
			t.Errorf("%s: header xattr not restored (%v)", rel, err)
		}
		n++
		return nil
	})
	if n == 0 {
		t.Fatal("no files checked")
	}
}

func TestWrappedPassphraseWarning(t *testing.T) {
	home := filepath.Join(t.TempDir(), "me")
	writeFiles(t, home, map[string]string{".ecryptfs/wrapped-passphrase": "wrapped", "notes.txt": "n"})
	repo := filepath.Join(t.TempDir(), "repo")
	mustSnap(t, "init", "-r", repo)
	r := mustSnap(t, "create", "-r", repo, home)
	if !strings.Contains(r.stderr, "wrapped-passphrase is in the backup") {
		t.Errorf("no warning about the wrapped passphrase: %q", r.stderr)
	}
	for _, args := range [][]string{{"--i-know"}, {"--exclude", "wrapped-passphrase"}} {
		r := mustSnap(t, append([]string{"create", "-r", repo, home}, args...)...)
		if strings.Contains(r.stderr, "wrapped-passphrase") {
			t.Errorf("create %v still warns: %q", args, r.stderr)
		}
	}
}
