package main

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
)

// verifyRestore compares a restored tree with the source it was backed up
// from and describes the differences ("" if none). A benchmark of a restore
// that lost data would be meaningless, and a tool that expands hard links
// writes more (so hard-link groups are checked too). full also compares
// file contents; otherwise sizes and mtimes only.
func verifyRestore(src, dst string, full bool) (string, error) {
	type node struct {
		mode   fs.FileMode
		size   int64
		mtime  int64 // s; tools differ in sub-second precision
		target string
		ino    uint64
		nlink  uint64
	}
	list := func(root string) (map[string]node, error) {
		m := map[string]node{}
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(root, path)
			st := info.Sys().(*syscall.Stat_t)
			n := node{mode: info.Mode(), ino: st.Ino, nlink: uint64(st.Nlink)}
			if info.Mode().IsRegular() {
				n.size, n.mtime = info.Size(), info.ModTime().Unix()
			}
			if info.Mode()&fs.ModeSymlink != 0 {
				n.target, _ = os.Readlink(path)
			}
			m[rel] = n
			return nil
		})
		return m, err
	}
	a, err := list(src)
	if err != nil {
		return "", err
	}
	b, err := list(dst)
	if err != nil {
		return "", fmt.Errorf("restored tree: %w", err)
	}
	var missing, extra, kind, size, mtime, content, target int
	srcGroups := map[uint64][]string{} // source inode -> names, for hard links
	for p, na := range a {
		nb, ok := b[p]
		switch {
		case !ok:
			missing++
			continue
		case na.mode != nb.mode:
			kind++
		case na.target != nb.target:
			target++
		case na.size != nb.size:
			size++
		case na.mtime != nb.mtime:
			mtime++
		}
		if na.mode.IsRegular() && na.nlink > 1 {
			srcGroups[na.ino] = append(srcGroups[na.ino], p)
		}
		if full && na.mode.IsRegular() && na.size == nb.size {
			same, err := sameContent(filepath.Join(src, p), filepath.Join(dst, p))
			if err != nil {
				return "", err
			}
			if !same {
				content++
			}
		}
	}
	for p := range b {
		if _, ok := a[p]; !ok {
			extra++
		}
	}
	// A hard-link group is kept if all its restored names share one inode.
	kept := 0
	for _, names := range srcGroups {
		if n0, ok := b[names[0]]; ok {
			all := true
			for _, p := range names[1:] {
				if n, ok := b[p]; !ok || n.ino != n0.ino {
					all = false
				}
			}
			if all {
				kept++
			}
		}
	}
	var probs []string
	add := func(n int, what string) {
		if n > 0 {
			probs = append(probs, fmt.Sprintf("%d %s", n, what))
		}
	}
	add(missing, "missing")
	add(extra, "extra")
	add(kind, "type/mode")
	add(target, "symlink target")
	add(size, "size")
	add(mtime, "mtime")
	add(content, "content")
	if kept != len(srcGroups) {
		probs = append(probs, fmt.Sprintf("hard links kept %d/%d", kept, len(srcGroups)))
	}
	sort.Strings(probs)
	return strings.Join(probs, ", "), nil
}

func sameContent(a, b string) (bool, error) {
	fa, err := os.Open(a)
	if err != nil {
		return false, err
	}
	defer fa.Close()
	fb, err := os.Open(b)
	if err != nil {
		return false, err
	}
	defer fb.Close()
	ba, bb := make([]byte, 1<<20), make([]byte, 1<<20)
	for {
		na, ea := io.ReadFull(fa, ba)
		nb, eb := io.ReadFull(fb, bb)
		if na != nb || !bytes.Equal(ba[:na], bb[:nb]) {
			return false, nil
		}
		if ea == io.EOF || ea == io.ErrUnexpectedEOF {
			return eb == ea, nil
		}
		if ea != nil {
			return false, ea
		}
		if eb != nil {
			return false, eb
		}
	}
}
