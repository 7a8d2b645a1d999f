package ecryptfs

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// FromClearTree writes the lower tree that eCryptfs would hold if the
// cleartext tree in clearDir had been copied into a fresh mount: every
// directory, file, symlink, hard link and special file, with the cleartext
// modes, times, owners (when running as root) and user.* xattrs, which a
// mount passes through to the lower entries. lowerDir must be missing or
// empty. Entries are converted in lexical order, so the same tree and seed
// give the same bytes. File contents are streamed, not held in memory.
func FromClearTree(clearDir, lowerDir string, seed uint64, opts Options) (*Tree, error) {
	entries, err := os.ReadDir(lowerDir)
	switch {
	case err == nil && len(entries) > 0:
		return nil, fmt.Errorf("ecryptfs: convert into %s: directory is not empty", lowerDir)
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("ecryptfs: convert into %s: %w", lowerDir, err)
	}
	t, err := NewTree(lowerDir, seed, opts)
	if err != nil {
		return nil, err
	}
	c := converter{t: t, clearDir: clearDir, links: make(map[[2]uint64]string), root: os.Geteuid() == 0}
	if err := filepath.WalkDir(clearDir, c.visit); err != nil {
		return nil, fmt.Errorf("ecryptfs: convert %s: %w", clearDir, err)
	}
	// Directories get their metadata last, deepest first: adding entries
	// changes a directory's mtime, and a read-only mode would stop them.
	for i := len(c.dirs) - 1; i >= 0; i-- {
		if err := c.metadata(c.dirs[i].clearPath, c.dirs[i].rel, &c.dirs[i].st); err != nil {
			return nil, fmt.Errorf("ecryptfs: convert %s: %w", clearDir, err)
		}
	}
	return t, nil
}

type converter struct {
	t        *Tree
	clearDir string
	links    map[[2]uint64]string // (device, inode) -> first cleartext path
	root     bool                 // may set owners
	dirs     []pendingDir
}

type pendingDir struct {
	clearPath, rel string
	st             unix.Stat_t
}

func (c *converter) visit(p string, d fs.DirEntry, err error) error {
	if err != nil {
		return err
	}
	rel, err := filepath.Rel(c.clearDir, p)
	if err != nil {
		return err
	}
	if rel == "." {
		return nil // the lower root is its own directory, like ~/.Private
	}
	rel = filepath.ToSlash(rel)
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		return &fs.PathError{Op: "lstat", Path: p, Err: err}
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		if err := c.t.MkdirAll(rel, 0o700); err != nil {
			return err
		}
		c.dirs = append(c.dirs, pendingDir{clearPath: p, rel: rel, st: st})
		return nil
	case unix.S_IFREG:
		if st.Nlink > 1 {
			id := [2]uint64{st.Dev, st.Ino}
			if first, ok := c.links[id]; ok {
				return c.t.Link(first, rel) // the inode already has its metadata
			}
			c.links[id] = rel
		}
		if err := c.copyFile(p, rel, st.Size, fileMode(st.Mode)); err != nil {
			return err
		}
	case unix.S_IFLNK:
		target, err := os.Readlink(p)
		if err != nil {
			return err
		}
		if err := c.t.Symlink(target, rel); err != nil {
			return err
		}
	default:
		if err := c.t.mknod(rel, st.Mode, st.Rdev); err != nil {
			return err
		}
	}
	return c.metadata(p, rel, &st)
}

// fileMode converts the permission bits of a stat mode to an fs.FileMode.
func fileMode(perm uint32) fs.FileMode {
	m := fs.FileMode(perm) & fs.ModePerm
	if perm&0o4000 != 0 {
		m |= fs.ModeSetuid
	}
	if perm&0o2000 != 0 {
		m |= fs.ModeSetgid
	}
	if perm&0o1000 != 0 {
		m |= fs.ModeSticky
	}
	return m
}

func (c *converter) copyFile(p, rel string, size int64, mode fs.FileMode) error {
	lowerRel, err := c.t.lowerRel(rel)
	if err != nil {
		return err
	}
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	return c.t.createFrom(lowerRel, rel, f, size, mode)
}

// metadata gives a lower entry the cleartext entry's owner, mode, user
// xattrs and times, in that order: chown clears set-id bits, and each step
// changes the ctime but not the times set last.
func (c *converter) metadata(clearPath, rel string, st *unix.Stat_t) error {
	lp, err := c.t.LowerPath(rel)
	if err != nil {
		return err
	}
	isLink := st.Mode&unix.S_IFMT == unix.S_IFLNK
	if c.root {
		if err := unix.Lchown(lp, int(st.Uid), int(st.Gid)); err != nil {
			return &fs.PathError{Op: "lchown", Path: lp, Err: err}
		}
	}
	if !isLink {
		if err := unix.Chmod(lp, st.Mode&0o7777); err != nil {
			return &fs.PathError{Op: "chmod", Path: lp, Err: err}
		}
		// Linux refuses user xattrs on symlinks, so there are none to copy.
		if err := c.copyXattrs(clearPath, lp); err != nil {
			return err
		}
	}
	ts := []unix.Timespec{st.Atim, st.Mtim}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, lp, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &fs.PathError{Op: "utimensat", Path: lp, Err: err}
	}
	return nil
}

// copyXattrs copies the user.* xattrs; other namespaces need privileges
// or belong to security modules, and a backup test needs only these.
func (c *converter) copyXattrs(src, dst string) error {
	names, err := listXattrs(src)
	if err != nil {
		return err
	}
	for _, name := range names {
		if !strings.HasPrefix(name, "user.") {
			continue
		}
		if name == XattrName && c.t.opts.XattrMetadata {
			return fmt.Errorf("%s: has its own %s xattr, which the lower file needs for its header", src, XattrName)
		}
		val, err := getXattr(src, name)
		if err != nil {
			return err
		}
		if err := unix.Lsetxattr(dst, name, val, 0); err != nil {
			return &fs.PathError{Op: "setxattr " + name, Path: dst, Err: err}
		}
	}
	return nil
}

// listXattrs lists the xattr names of a path (not following symlinks).
func listXattrs(p string) ([]string, error) {
	for range 4 { // the list can grow between the size query and the read
		n, err := unix.Llistxattr(p, nil)
		if err != nil {
			if errors.Is(err, unix.ENOTSUP) {
				return nil, nil
			}
			return nil, &fs.PathError{Op: "listxattr", Path: p, Err: err}
		}
		if n == 0 {
			return nil, nil
		}
		buf := make([]byte, n)
		n, err = unix.Llistxattr(p, buf)
		if errors.Is(err, unix.ERANGE) {
			continue
		}
		if err != nil {
			return nil, &fs.PathError{Op: "listxattr", Path: p, Err: err}
		}
		var names []string
		for _, b := range bytes.Split(buf[:n], []byte{0}) {
			if len(b) > 0 {
				names = append(names, string(b))
			}
		}
		return names, nil
	}
	return nil, &fs.PathError{Op: "listxattr", Path: p, Err: unix.ERANGE}
}

func getXattr(p, name string) ([]byte, error) {
	for range 4 {
		n, err := unix.Lgetxattr(p, name, nil)
		if err != nil {
			return nil, &fs.PathError{Op: "getxattr " + name, Path: p, Err: err}
		}
		buf := make([]byte, n)
		n, err = unix.Lgetxattr(p, name, buf)
		if errors.Is(err, unix.ERANGE) {
			continue
		}
		if err != nil {
			return nil, &fs.PathError{Op: "getxattr " + name, Path: p, Err: err}
		}
		return buf[:n], nil
	}
	return nil, &fs.PathError{Op: "getxattr " + name, Path: p, Err: unix.ERANGE}
}

// mknod creates a fifo, socket or device node: eCryptfs creates the lower
// node with the same type, mode and device number. Device nodes need
// CAP_MKNOD.
func (t *Tree) mknod(clearRel string, mode uint32, dev uint64) error {
	rel, err := t.lowerRel(clearRel)
	if err != nil {
		return err
	}
	if err := t.mkParents(rel, clearRel); err != nil {
		return err
	}
	if err := unix.Mknod(t.abs(rel), mode, int(dev)); err != nil {
		return fmt.Errorf("ecryptfs: mknod %s: %w", clearRel, err)
	}
	t.path[rel] = clearRel
	return nil
}
