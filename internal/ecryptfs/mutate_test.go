package ecryptfs

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// copyTree copies regular files, directories and symlinks, with their
// modification times: Mutate dates its edits after the newest file, so a
// copy made in another second would be mutated differently.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		to := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(to, 0o755)
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(target, to)
		default:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			return os.WriteFile(to, b, 0o644)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	// Times last: creating entries changed their directories' times.
	err = filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		ts := []unix.Timespec{unix.NsecToTimespec(fi.ModTime().UnixNano()), unix.NsecToTimespec(fi.ModTime().UnixNano())}
		return unix.UtimesNanoAt(unix.AT_FDCWD, filepath.Join(dst, rel), ts, unix.AT_SYMLINK_NOFOLLOW)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestMutate(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "a")
	tr, err := NewTree(dir, 50, Options{})
	if err != nil {
		t.Fatal(err)
	}
	clear := map[string][]byte{
		"home/store.db":             randBytes(50, 64*ExtentSize),
		"home/VMs/devbox/disk.img":  randBytes(51, 200*ExtentSize+17),
		"home/logs/sync-daemon.log": bytes.Repeat([]byte("2025-06-01 INFO started\n"), 500),
		"home/small.db":             randBytes(52, 2*ExtentSize), // too small for page edits
		"home/photos/p1.jpg":        randBytes(53, 5*ExtentSize),
	}
	for i := range 10 {
		clear[fmt.Sprintf("home/Documents/note%02d.md", i)] = []byte(fmt.Sprintf("# Note %d\n\nfirst line\nsecond line\nthird line\n", i))
	}
	for name, data := range clear {
		mustWrite(t, tr, name, data)
	}
	copyTree(t, dir, filepath.Join(base, "b"))
	before := map[string][]byte{}
	for name := range clear {
		before[name] = lowerBytes(t, tr, name)
	}

	mutate := func(d string) (*Tree, DaySummary) {
		tr, err := NewTree(d, 50, Options{})
		if err != nil {
			t.Fatal(err)
		}
		sum, err := tr.Mutate(0)
		if err != nil {
			t.Fatal(err)
		}
		return tr, sum
	}
	ta, sum := mutate(dir)
	_, sumB := mutate(filepath.Join(base, "b"))
	t.Log(sum)
	if sum != sumB {
		t.Errorf("same tree, seed and round: %v vs %v", sum, sumB)
	}
	a, b := treeFiles(t, dir), treeFiles(t, filepath.Join(base, "b"))
	for k, v := range a {
		if b[k] != v {
			t.Errorf("%s differs between two mutations of the same tree", k)
		}
	}
	if sum.PagedFiles < 1 || sum.PagedFiles > 2 || sum.PagesWritten < 24 || sum.PagesWritten > 48 ||
		sum.Logs != 1 || sum.BytesAppended < 256 || sum.Saved != 3 {
		t.Errorf("summary %+v", sum)
	}

	changedExtents, saved := 0, 0
	for name, data := range clear {
		after := lowerBytes(t, ta, name)
		got, err := ta.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		old := before[name]
		sameMarker := bytes.Equal(old[8:16], after[8:16])
		switch filepath.Ext(name) {
		case ".db", ".img":
			if !sameMarker || len(after) != len(old) || len(got) != len(data) {
				t.Errorf("%s: page edits changed the marker or size", name)
			}
			for n := int64(0); n < extentsFor(int64(len(data))); n++ {
				r := extentRegion(n, HeaderSize)
				if !bytes.Equal(old[r.from:r.to], after[r.from:r.to]) {
					changedExtents++
				}
			}
		case ".log":
			if !sameMarker || len(got) <= len(data) || !bytes.Equal(got[:len(data)], data) {
				t.Errorf("%s: not appended in place", name)
			}
		case ".md":
			switch {
			case sameMarker && (!bytes.Equal(old, after) || !bytes.Equal(got, data)):
				t.Errorf("%s: changed without a new key", name)
			case !sameMarker:
				saved++
				if bytes.Equal(got, data) {
					t.Errorf("%s: saved by rename with the same content", name)
				}
				allBlocksDiffer(t, old, after, region{HeaderSize, int64(min(len(old), len(after)))})
			}
		default:
			if !bytes.Equal(old, after) {
				t.Errorf("%s changed", name)
			}
		}
	}
	if changedExtents < 1 || changedExtents > sum.PagesWritten {
		t.Errorf("%d extents changed for %d page writes", changedExtents, sum.PagesWritten)
	}
	if saved != sum.Saved {
		t.Errorf("%d documents have a new key, summary says %d", saved, sum.Saved)
	}
	if len(ta.Map()) != len(tr.Map()) {
		t.Errorf("map: %d entries, was %d", len(ta.Map()), len(tr.Map()))
	}

	// The next day's edits differ: the tree changed.
	_, next := mutate(dir)
	if next.Saved != 3 {
		t.Errorf("second day: %+v", next)
	}
}
