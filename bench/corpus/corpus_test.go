package main

import (
	"bytes"
	"crypto/sha256"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// entry is everything about one name in a tree that the benchmark relies on.
type entry struct {
	mode   fs.FileMode
	mtime  int64 // ns
	size   int64
	sum    [32]byte // content of regular files
	target string   // symlink target
	link   string   // first name of the same inode, for hard links
}

// snapshotTree records a tree by relative path; hard links are recorded as
// the first name (in walk order) that shares the inode.
func snapshotTree(t *testing.T, root string) map[string]entry {
	t.Helper()
	out := map[string]entry{}
	inodes := map[uint64]string{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		info, err := os.Lstat(path)
		if err != nil {
			return err
		}
		e := entry{mode: info.Mode(), mtime: info.ModTime().UnixNano(), size: info.Size()}
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			e.target, err = os.Readlink(path)
		case info.Mode().IsRegular():
			var data []byte
			data, err = os.ReadFile(path)
			e.sum = sha256.Sum256(data)
			st := info.Sys().(*syscall.Stat_t)
			if st.Nlink > 1 {
				if first, ok := inodes[st.Ino]; ok {
					e.link = first
				} else {
					inodes[st.Ino] = rel
				}
			}
		case info.IsDir():
			e.size = 0 // directory sizes depend on the file system's history
		}
		out[rel] = e
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func compareTrees(t *testing.T, a, b map[string]entry) {
	t.Helper()
	if len(a) != len(b) {
		t.Errorf("trees have %d and %d entries", len(a), len(b))
	}
	bad := 0
	for p, ea := range a {
		eb, ok := b[p]
		if !ok {
			t.Errorf("%s missing in second tree", p)
		} else if ea != eb {
			t.Errorf("%s differs: %+v vs %+v", p, ea, eb)
		} else {
			continue
		}
		if bad++; bad > 10 {
			t.Fatal("too many differences")
		}
	}
}

func TestGenerateDeterministic(t *testing.T) {
	a, b := filepath.Join(t.TempDir(), "home"), filepath.Join(t.TempDir(), "home")
	for _, d := range []string{a, b} {
		if err := Generate(d, "tiny", 42); err != nil {
			t.Fatal(err)
		}
	}
	sa := snapshotTree(t, a)
	compareTrees(t, sa, snapshotTree(t, b))

	s, err := Summarize(a)
	if err != nil {
		t.Fatal(err)
	}
	if s.Bytes < 15<<20 || s.Bytes > 30<<20 || s.Files < 500 || s.Symlinks == 0 || s.HardLinked == 0 {
		t.Errorf("tiny corpus out of shape: %s", s)
	}

	// The same mutation of the same tree must give the same tree.
	for _, d := range []string{a, b} {
		if _, err := Mutate(d, 7); err != nil {
			t.Fatal(err)
		}
	}
	sm := snapshotTree(t, a)
	compareTrees(t, sm, snapshotTree(t, b))

	// A day of edits changes a small but non-zero fraction of the data.
	changed, total := newBlocks(t, a, sa, sm)
	frac := float64(changed) / float64(total)
	t.Logf("mutate: %d of %d bytes in new 4 KiB blocks (%.2f %%)", changed, total, 100*frac)
	if changed == 0 || frac > 0.10 {
		t.Errorf("mutate changed %.2f %% of the bytes, want (0, 10] %%", 100*frac)
	}
}

// newBlocks counts the bytes of the mutated tree at root that lie in 4 KiB
// blocks (file-aligned) whose content did not occur anywhere in the tree
// before. Counting by content rather than by path keeps a renamed directory
// from looking like new data.
func newBlocks(t *testing.T, root string, before, after map[string]entry) (changed, total int64) {
	t.Helper()
	// The tree before the edits is gone from disk; generate it again (the
	// test above showed generation is deterministic).
	orig := filepath.Join(t.TempDir(), "home")
	if err := Generate(orig, "tiny", 42); err != nil {
		t.Fatal(err)
	}
	seen := map[[32]byte]bool{}
	eachBlock(t, orig, before, func(b []byte) { seen[sha256.Sum256(b)] = true })
	eachBlock(t, root, after, func(b []byte) {
		total += int64(len(b))
		if !seen[sha256.Sum256(b)] {
			changed += int64(len(b))
		}
	})
	return changed, total
}

// eachBlock calls fn for every 4 KiB block of every regular file (each inode
// once) listed in entries.
func eachBlock(t *testing.T, dir string, entries map[string]entry, fn func(b []byte)) {
	t.Helper()
	for p, e := range entries {
		if !e.mode.IsRegular() || e.link != "" {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, p))
		if err != nil {
			t.Fatal(err)
		}
		for off := 0; off < len(data); off += 4096 {
			fn(data[off:min(off+4096, len(data))])
		}
	}
}

func TestEditTextKeepsMostLines(t *testing.T) {
	m := &mutator{r: newRand(1, 2)}
	m.tg = newTextGen(m.r)
	orig := m.tg.text("cfamily", 20000)
	edited := m.editText(bytes.Clone(orig), "cfamily")
	if bytes.Equal(orig, edited) {
		t.Fatal("editText changed nothing")
	}
	kept := 0
	origLines := map[string]bool{}
	for _, l := range bytes.Split(orig, []byte("\n")) {
		origLines[string(l)] = true
	}
	lines := bytes.Split(edited, []byte("\n"))
	for _, l := range lines {
		if origLines[string(l)] {
			kept++
		}
	}
	if kept < len(lines)*8/10 {
		t.Errorf("only %d of %d lines kept", kept, len(lines))
	}
}

func TestUsage(t *testing.T) {
	for _, args := range [][]string{nil, {"gen"}, {"frob", "x"}, {"gen", "-size", "tiny", "a", "b"}} {
		if err := run(args); err != errUsage {
			t.Errorf("run(%q) = %v, want usage error", args, err)
		}
	}
	if err := run([]string{"gen", "-size", "huge", t.TempDir()}); err == nil {
		t.Error("unknown size accepted")
	}
}
