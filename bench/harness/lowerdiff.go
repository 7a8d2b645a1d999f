package main

// What a day of edits really changed in an eCryptfs lower tree, measured
// without any backup tool: the tree is scanned before and after the edits,
// each regular file as a list of digests of its 4 KiB blocks, and the two
// scans are compared. This is the yardstick for the bytes each tool adds.

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"syscall"

	"golang.org/x/sys/unix"
)

const (
	// lowerBlock is the unit of comparison: eCryptfs encrypts 4 KiB extents
	// on their own and its header is two of them, so an edit changes whole
	// blocks of the lower file.
	lowerBlock = 4096
	// headerXattr holds a lower file's header when the tree was written
	// with ecryptfs_xattr_metadata (ecryptfs-gen -xattr).
	headerXattr = "user.ecryptfs"
)

// blockSum identifies a block's contents: the first half of its SHA-256.
type blockSum [16]byte

// lowerFile is one lower file (an inode; hard links share it) as scanned.
type lowerFile struct {
	dev, ino uint64
	size     int64
	marker   [8]byte // header bytes 8–15: a new one means a new file (fresh key)
	xattr    []byte  // the user.ecryptfs value in xattr mode, else nil
	blocks   []blockSum
}

// lowerState is a scan of a lower tree: its regular files by lower slash
// path relative to the root.
type lowerState struct {
	files map[string]*lowerFile
	bytes int64 // sum of file sizes, hard links once
	count int   // regular files, hard links once
}

// scanLower reads every regular file under root. In xattr mode the header
// marker comes from the user.ecryptfs xattr, else from the file itself.
func scanLower(root string, xattr bool) (*lowerState, error) {
	s := &lowerState{files: map[string]*lowerFile{}}
	inodes := map[[2]uint64]*lowerFile{}
	buf := make([]byte, 256*lowerBlock)
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		var st syscall.Stat_t
		if err := syscall.Lstat(p, &st); err != nil {
			return &fs.PathError{Op: "lstat", Path: p, Err: err}
		}
		id := [2]uint64{st.Dev, st.Ino}
		if f, ok := inodes[id]; ok {
			s.files[rel] = f
			return nil
		}
		f, err := scanFile(p, buf, xattr)
		if err != nil {
			return err
		}
		f.dev, f.ino = st.Dev, st.Ino
		inodes[id] = f
		s.files[rel] = f
		s.bytes += f.size
		s.count++
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("scan lower tree: %w", err)
	}
	return s, nil
}

func scanFile(p string, buf []byte, xattr bool) (*lowerFile, error) {
	fh, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	f := &lowerFile{}
	for {
		n, err := io.ReadFull(fh, buf)
		for off := 0; off < n; off += lowerBlock {
			sum := sha256.Sum256(buf[off:min(off+lowerBlock, n)])
			f.blocks = append(f.blocks, blockSum(sum[:16]))
		}
		if f.size == 0 && n >= 16 {
			copy(f.marker[:], buf[8:16])
		}
		f.size += int64(n)
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	if xattr {
		f.marker = [8]byte{}
		v := make([]byte, 8192)
		n, err := unix.Fgetxattr(int(fh.Fd()), headerXattr, v)
		if err != nil {
			return nil, &fs.PathError{Op: "getxattr " + headerXattr, Path: p, Err: err}
		}
		f.xattr = v[:n]
		if n >= 16 {
			copy(f.marker[:], v[8:16])
		}
	}
	return f, nil
}

// blockLen is the length of block i of a file of size bytes.
func blockLen(i int, size int64) int64 {
	return min(size-int64(i)*lowerBlock, lowerBlock)
}

// lowerChange is what one round of edits changed in a lower tree.
type lowerChange struct {
	Rep, Round    int
	Edits         string // ecryptfs-gen's summary of the round
	ChangedBytes  int64  // bytes of the blocks that differ or are new (plus changed header xattrs)
	ChangedBlocks int64
	Changed       int // files with changed bytes, hard links once
	InPlace       int // of them: same lower name, same inode, same header marker
	Replaced      int // of them: same name, new inode or marker (saved by rename: new key)
	New           int // names that did not exist before
	Deleted       int // names that exist no more (count 0 bytes)
	TreeBytes     int64
	TreeFiles     int
}

// diffLower compares two scans of the same lower tree. Files are matched by
// lower name; for each, the blocks that differ from the block at the same
// offset before, or lie beyond the old end, count, so a new file counts
// whole and a deleted one not at all. A file counts as edited in place when
// it kept its name, inode and header marker (bytes 8–15, which eCryptfs
// writes once per file, with its key). Each inode counts once.
func diffLower(before, after *lowerState) lowerChange {
	c := lowerChange{TreeBytes: after.bytes, TreeFiles: after.count}
	names := make([]string, 0, len(after.files))
	for p := range after.files {
		names = append(names, p)
	}
	slices.Sort(names)
	seen := map[*lowerFile]bool{}
	for _, p := range names {
		a := after.files[p]
		b := before.files[p]
		if b == nil {
			c.New++
		}
		if seen[a] {
			continue
		}
		seen[a] = true
		var blocks, n int64
		for i, sum := range a.blocks {
			if b == nil || i >= len(b.blocks) || b.blocks[i] != sum {
				blocks++
				n += blockLen(i, a.size)
			}
		}
		if a.xattr != nil && (b == nil || !bytes.Equal(a.xattr, b.xattr)) {
			n += int64(len(a.xattr))
		}
		if n == 0 {
			continue
		}
		c.ChangedBytes += n
		c.ChangedBlocks += blocks
		c.Changed++
		switch {
		case b == nil:
		case a.dev == b.dev && a.ino == b.ino && a.marker == b.marker:
			c.InPlace++
		default:
			c.Replaced++
		}
	}
	for p := range before.files {
		if _, ok := after.files[p]; !ok {
			c.Deleted++
		}
	}
	return c
}
