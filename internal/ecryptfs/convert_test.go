package ecryptfs

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// writeClearTree writes a small cleartext home directory with every kind of
// entry the converter handles.
func writeClearTree(t *testing.T, dir string, withXattr bool) {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(dir, "Documents/deep/er"), 0o755))
	must(os.MkdirAll(filepath.Join(dir, "private"), 0o700))
	must(os.WriteFile(filepath.Join(dir, "Documents/notes.txt"), []byte("line one\nline two\n"), 0o644))
	must(os.WriteFile(filepath.Join(dir, "Documents/deep/er/big.bin"), randBytes(30, 3*ExtentSize+5), 0o600))
	must(os.WriteFile(filepath.Join(dir, "private/empty"), nil, 0o400))
	must(os.WriteFile(filepath.Join(dir, "store.db"), randBytes(31, 20*ExtentSize), 0o644))
	must(os.Link(filepath.Join(dir, "store.db"), filepath.Join(dir, "private/store-link.db")))
	must(os.Symlink("Documents/notes.txt", filepath.Join(dir, "notes-link")))
	must(os.Symlink("missing/target", filepath.Join(dir, "dangling")))
	must(unix.Mkfifo(filepath.Join(dir, "fifo"), 0o640))
	if withXattr {
		must(unix.Setxattr(filepath.Join(dir, "Documents/notes.txt"), "user.comment", []byte("keep me"), 0))
	}
	when := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	must(filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		when = when.Add(time.Minute)
		ts := []unix.Timespec{unix.NsecToTimespec(when.UnixNano()), unix.NsecToTimespec(when.UnixNano())}
		return unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW)
	}))
	// Directories last, so that writing into them does not move their times.
	for _, d := range []string{"Documents/deep/er", "Documents/deep", "Documents", "private"} {
		ts := time.Date(2025, 5, 1, 0, 0, 0, 0, time.UTC)
		must(os.Chtimes(filepath.Join(dir, d), ts, ts))
	}
}

func TestFromClearTree(t *testing.T) {
	base := t.TempDir()
	clearDir := filepath.Join(base, "clear")
	withXattr := true
	if err := os.MkdirAll(clearDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Setxattr(clearDir, "user.probe", []byte("x"), 0); err != nil {
		withXattr = false
		t.Logf("no user xattrs here (%v): not checking their copy", err)
	}
	writeClearTree(t, clearDir, withXattr)

	tr, err := FromClearTree(clearDir, filepath.Join(base, "lower"), 40, Options{})
	if err != nil {
		t.Fatal(err)
	}
	m := tr.Map()
	clearToLower := map[string]string{}
	for l, c := range m {
		clearToLower[c] = l
	}
	n := 0
	err = filepath.WalkDir(clearDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(clearDir, p)
		if rel == "." {
			return nil
		}
		n++
		rel = filepath.ToSlash(rel)
		lowerRel, ok := clearToLower[rel]
		if !ok {
			t.Errorf("%s: not in the map", rel)
			return nil
		}
		lp := filepath.Join(tr.LowerDir(), filepath.FromSlash(lowerRel))
		ci, err := os.Lstat(p)
		if err != nil {
			return err
		}
		li, err := os.Lstat(lp)
		if err != nil {
			return err
		}
		if ci.Mode() != li.Mode() {
			t.Errorf("%s: mode %v, lower %v", rel, ci.Mode(), li.Mode())
		}
		if !ci.ModTime().Equal(li.ModTime()) {
			t.Errorf("%s: mtime %v, lower %v", rel, ci.ModTime(), li.ModTime())
		}
		switch {
		case ci.Mode().IsRegular():
			want, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			mustRead(t, tr, rel, want)
			if li.Size() != LowerSize(ci.Size(), false) {
				t.Errorf("%s: lower size %d", rel, li.Size())
			}
		case ci.Mode()&fs.ModeSymlink != 0:
			want, _ := os.Readlink(p)
			if got, err := tr.Readlink(rel); err != nil || got != want {
				t.Errorf("%s: link to %q, %v; want %q", rel, got, err, want)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n != len(m) {
		t.Errorf("%d cleartext entries, %d in the map", n, len(m))
	}
	p1, _ := tr.LowerPath("store.db")
	p2, _ := tr.LowerPath("private/store-link.db")
	if inode(t, p1) != inode(t, p2) {
		t.Error("hard link not kept")
	}
	if withXattr {
		lp, _ := tr.LowerPath("Documents/notes.txt")
		buf := make([]byte, 64)
		n, err := unix.Lgetxattr(lp, "user.comment", buf)
		if err != nil || string(buf[:n]) != "keep me" {
			t.Errorf("user xattr: %q, %v", buf[:n], err)
		}
	}

	// The same tree and seed give the same lower tree.
	tr2, err := FromClearTree(clearDir, filepath.Join(base, "lower2"), 40, Options{})
	if err != nil {
		t.Fatal(err)
	}
	a, b := treeFiles(t, tr.LowerDir()), treeFiles(t, tr2.LowerDir())
	if len(a) != len(b) {
		t.Fatalf("%d vs %d entries", len(a), len(b))
	}
	for k, v := range a {
		if b[k] != v {
			t.Errorf("%s differs between two conversions", k)
		}
	}

	if _, err := FromClearTree(clearDir, tr.LowerDir(), 40, Options{}); err == nil {
		t.Error("converting into a non-empty directory succeeded")
	}
}

func TestFromClearTreeXattr(t *testing.T) {
	base := t.TempDir()
	needUserXattrs(t, base)
	clearDir := filepath.Join(base, "clear")
	if err := os.MkdirAll(clearDir, 0o755); err != nil {
		t.Fatal(err)
	}
	writeClearTree(t, clearDir, false)
	tr, err := FromClearTree(clearDir, filepath.Join(base, "lower"), 41, Options{XattrMetadata: true})
	if err != nil {
		t.Fatal(err)
	}
	want, _ := os.ReadFile(filepath.Join(clearDir, "store.db"))
	mustRead(t, tr, "store.db", want)
	lp, _ := tr.LowerPath("store.db")
	if b, _ := os.ReadFile(lp); len(b) != len(want) || bytes.Equal(b, want) {
		t.Errorf("lower file %d bytes: want %d encrypted bytes, no header", len(b), len(want))
	}
}
