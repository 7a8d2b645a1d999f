// Package fusefs serves a repository's snapshots as a read-only FUSE file
// system, for 'snap mount'.
//
// The layout, with names of snapshots in local time:
//
//	snapshots/2026-11-30T14:05:00/<one entry per backed-up path>/...
//	snapshots/2026-11-30T14:05:00-1a2b3c4d/   a later snapshot of the same second
//	snapshots/latest -> 2026-11-30T14:05:00   the newest snapshot
//	ids/1a2b3c4d/...                          by short ID
//	hosts/<host>/<time>/..., hosts/<host>/latest
//	tags/<tag>/<time>/..., tags/<tag>/latest
//
// A snapshot directory has the same name everywhere it appears. The
// directories above the snapshots follow the repository: when one of them is
// looked up or listed and the list of snapshots is older than a second, the
// snapshots/ directory of the repository is listed again and the documents
// of new snapshots are read, so snapshots made or forgotten while mounted
// come and go without a remount.
//
// Inside a snapshot every file shows its recorded type, mode, owner, size,
// times, link count, device numbers, symlink target and extended
// attributes. Content is read blob by blob, each verified against its
// SHA-256 ID, through a cache of raw blob data bounded in bytes; a read that
// reaches into blob k of a file starts loading the next blobs in the
// background, so that a sequential reader finds them ready.
//
// The file system never takes the repository's write lock and never keeps
// index.db open between lookups, so 'snap create' runs while it is mounted.
// A prune that deletes a pack under an open file makes reads of blobs that
// are gone fail with EIO, never return other bytes: every blob is verified,
// and a blob whose pack has vanished is looked up in the index once more, in
// case the prune moved it to another pack.
package fusefs

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"runtime"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	"snap/chunk"
	"snap/index"
	"snap/repo"
	"snap/repo/pack"
	"snap/snapshot"
)

// DefaultCacheSize is the default memory for cached blob data.
const DefaultCacheSize = 256 << 20

// Options configure a mount.
type Options struct {
	// CacheSize bounds the raw blob data kept in memory, in bytes;
	// 0 means DefaultCacheSize.
	CacheSize int64
	// ReadAhead is how many bytes of blobs past the one being read are
	// loaded in the background when a file is read sequentially; 0 means
	// 32 MiB, and it is never more than a quarter of the cache, so that
	// read-ahead cannot evict the blobs it loaded before they are read.
	ReadAhead int64
	// AllowOther lets other users access the mount (FUSE allow_other).
	// The kernel then checks each file's recorded permissions against the
	// user (default_permissions), so that the mount does not show anyone
	// a file the backup's owner could not have shown them.
	AllowOther bool
	// Logf, if not nil, receives errors that can reach the reader only as an
	// errno, such as the reason a read failed with EIO.
	Logf func(format string, args ...any)
	// SnapshotsMaxAge is how old the list of snapshots may get before a
	// lookup or listing reads it again; 0 means one second.
	SnapshotsMaxAge time.Duration
}

// Timeouts for the kernel's caches of entries and attributes: the
// directories above the snapshots change as snapshots come and go, what is
// inside a snapshot never changes.
const (
	metaTimeout     = time.Second
	snapshotTimeout = time.Hour
)

// blockSize is reported as st_blksize of files: programs such as cp size
// their buffers by it, and larger reads mean fewer round trips to us.
const blockSize = 1 << 20

// maxRead is the largest read request the kernel may send.
const maxRead = 1 << 20

// FS is the state shared by every node of a mounted file system.
type FS struct {
	ctx   context.Context // ends background work at unmount
	r     *repo.Repository
	opts  Options
	cache *blobCache
	snaps *snapshotSet
	uid   uint32 // owner of the directories above the snapshots
	gid   uint32
}

// New returns the file system for r. ctx bounds the loads the file system
// starts in the background; cancel it after the file system is unmounted.
func New(ctx context.Context, r *repo.Repository, opts Options) *FS {
	if opts.CacheSize <= 0 {
		opts.CacheSize = DefaultCacheSize
	}
	if opts.ReadAhead <= 0 {
		opts.ReadAhead = 32 << 20
	}
	opts.ReadAhead = min(opts.ReadAhead, opts.CacheSize/4)
	if opts.SnapshotsMaxAge <= 0 {
		opts.SnapshotsMaxAge = time.Second
	}
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	f := &FS{
		ctx:   ctx,
		r:     r,
		opts:  opts,
		cache: newBlobCache(ctx, opts.CacheSize, max(2, runtime.GOMAXPROCS(0))),
		uid:   uint32(os.Getuid()),
		gid:   uint32(os.Getgid()),
	}
	f.snaps = newSnapshotSet(ctx, r, opts.SnapshotsMaxAge, opts.Logf)
	return f
}

// Root returns the root directory node, to be passed to fs.Mount.
func (f *FS) Root() fs.InodeEmbedder {
	return &metaDir{fsys: f, key: "", id: rootIdent()}
}

// Mount mounts f at dir and starts serving it. Stop it with the server's
// Unmount; its Wait returns when the file system was unmounted, by Unmount
// or by 'fusermount3 -u'.
func (f *FS) Mount(dir string) (*fuse.Server, error) {
	entry, attr := snapshotTimeout, snapshotTimeout
	mo := fuse.MountOptions{
		AllowOther: f.opts.AllowOther,
		FsName:     "snap:" + f.r.Backend().Location(),
		Name:       "snap",
		Options:    []string{"ro"},
		MaxWrite:   maxRead,
		// Blob loads are verified and may be slow; the kernel may send
		// several reads of a file at once, which the cache merges.
		MaxBackground: 32,
	}
	if f.opts.AllowOther {
		mo.Options = append(mo.Options, "default_permissions")
	}
	opts := &fs.Options{
		MountOptions: mo,
		EntryTimeout: &entry,
		AttrTimeout:  &attr,
		// Show modes as recorded, 0 included, instead of go-fuse's
		// substitute 0644/0755.
		NullPermissions: true,
		UID:             f.uid,
		GID:             f.gid,
	}
	return fs.Mount(dir, f.Root(), opts)
}

// ident identifies a node of the file system: SHA-256 of its parent's ident
// and its name (and, for snapshot directories, the snapshot ID). The inode
// number is its first 8 bytes, the generation the next 8.
//
// go-fuse treats two nodes with the same inode number and generation as one
// node and serves the first one's content for both, so these must not
// collide by accident: 128 bits of SHA-256 make that as unlikely as a blob
// ID collision, while inode numbers stay the same from mount to mount.
// Directories get a different ident on each path (a directory must have one
// parent); files that were hard links to each other in one snapshot get the
// same ident (see hardLinkIdent).
type ident [sha256.Size]byte

func rootIdent() ident { return sha256.Sum256([]byte("snap fusefs root")) }

// child returns the ident of the entry name in the directory id, with extra
// bytes that distinguish what the entry shows.
func (id ident) child(name string, extra []byte) ident {
	h := sha256.New()
	h.Write(id[:])
	var n [binary.MaxVarintLen64]byte
	h.Write(n[:binary.PutUvarint(n[:], uint64(len(name)))])
	h.Write([]byte(name))
	h.Write(extra)
	var out ident
	h.Sum(out[:0])
	return out
}

// hardLinkIdent is the ident of a file with more than one link inside the
// snapshot whose root directory is scope: the same for every entry of the
// hard-link group that records the same content and metadata, so that they
// show one inode number, as they did on disk. The node's encoding (without
// its name) is part of it, so two entries that differ in anything (the
// file changed between reading the two names) stay two files.
func hardLinkIdent(scope ident, n *snapshot.Node) (ident, bool) {
	c := *n
	c.Name = "x"
	enc, err := snapshot.EncodeTree([]snapshot.Node{c})
	if err != nil {
		return ident{}, false
	}
	var buf [16]byte
	binary.LittleEndian.PutUint64(buf[:8], n.Device)
	binary.LittleEndian.PutUint64(buf[8:], n.Inode)
	h := sha256.New()
	h.Write([]byte("hard link"))
	h.Write(scope[:])
	h.Write(buf[:])
	h.Write(enc)
	var out ident
	h.Sum(out[:0])
	return out, true
}

// stable returns the go-fuse identity of a node of type mode.
func (id ident) stable(mode uint32) fs.StableAttr {
	ino := binary.LittleEndian.Uint64(id[:8])
	if ino <= fuse.FUSE_ROOT_ID || ino == ^uint64(0) { // reserved numbers
		ino = 2 + ino&1
	}
	return fs.StableAttr{Mode: mode & syscall.S_IFMT, Ino: ino, Gen: binary.LittleEndian.Uint64(id[8:16])}
}

// typeBits returns the S_IF* bits of a node type.
func typeBits(t snapshot.NodeType) uint32 {
	switch t {
	case snapshot.TypeDir:
		return syscall.S_IFDIR
	case snapshot.TypeSymlink:
		return syscall.S_IFLNK
	case snapshot.TypeCharDev:
		return syscall.S_IFCHR
	case snapshot.TypeBlockDev:
		return syscall.S_IFBLK
	case snapshot.TypeFIFO:
		return syscall.S_IFIFO
	case snapshot.TypeSocket:
		return syscall.S_IFSOCK
	}
	return syscall.S_IFREG
}

// fillAttr sets out to the recorded metadata of n.
func fillAttr(n *snapshot.Node, ino uint64, out *fuse.Attr) {
	out.Ino = ino
	out.Mode = typeBits(n.Type) | n.Mode&0o7777
	out.Uid, out.Gid = n.UID, n.GID
	switch n.Type {
	case snapshot.TypeFile:
		out.Size = n.Size
		alloc := n.Size
		for _, h := range n.Holes {
			alloc -= min(h.Length, alloc)
		}
		out.Blocks = (alloc + 511) / 512
	case snapshot.TypeSymlink:
		out.Size = uint64(len(n.LinkTarget))
	case snapshot.TypeCharDev, snapshot.TypeBlockDev:
		out.Rdev = encodeDev(n.Rdev)
	}
	out.Blksize = blockSize
	out.Nlink = uint32(min(n.Links, 1<<32-1))
	if out.Nlink == 0 {
		out.Nlink = 1
	}
	mtime := unixTime(n.MTime)
	atime, ctime := mtime, mtime // directories record no atime
	if !n.ATime.IsZero() {
		atime = unixTime(n.ATime)
	}
	if !n.CTime.IsZero() {
		ctime = unixTime(n.CTime)
	}
	out.SetTimes(&atime, &mtime, &ctime)
}

// unixTime maps the zero time (not recorded) to the epoch rather than to the
// year 1, which stat would show as a huge negative number.
func unixTime(t time.Time) time.Time {
	if t.IsZero() {
		return time.Unix(0, 0)
	}
	return t
}

// encodeDev converts a recorded device number (Linux's 64-bit dev_t) to the
// 32-bit form of the FUSE protocol, which the kernel decodes with
// new_decode_dev: 12 bits of major, 20 of minor.
func encodeDev(dev uint64) uint32 {
	major, minor := unix.Major(dev), unix.Minor(dev)
	return minor&0xff | (major&0xfff)<<8 | (minor&^0xff)<<12
}

// errno turns an error into what the reader of the file system gets: EINTR
// for an interrupted request (Go's os package and most C programs simply
// retry), EIO for anything else; the details go to the log.
func errno(err error) syscall.Errno {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return syscall.EINTR
	}
	return syscall.EIO
}

// loadBlob loads the blob id of type t, verified, from loc if known is set,
// and reports the location it was found at. A load from a known location
// that fails (prune may have deleted the pack after moving the blob to a new
// one) looks the blob up in the index once more and tries the new location,
// if there is one.
func (f *FS) loadBlob(ctx context.Context, t pack.BlobType, id chunk.ID, loc index.Location, known bool) ([]byte, index.Location, error) {
	var first error
	if known {
		data, err := f.r.LoadBlobAt(ctx, loc)
		if err == nil {
			return data, loc, nil
		}
		if ctx.Err() != nil {
			return nil, loc, err
		}
		first = err
	}
	now, found, err := f.r.Index().Lookup(id)
	switch {
	case err != nil:
		return nil, loc, fmt.Errorf("look up %s blob %s in the index: %w", t, id.Short(), err)
	case !found && first != nil:
		return nil, loc, fmt.Errorf("%w (and the blob is no longer in the index: a prune removed it)", first)
	case !found:
		return nil, loc, fmt.Errorf("load %s blob %s: %w", t, id.Short(), repo.ErrBlobMissing)
	case known && now == loc:
		return nil, loc, first // no other copy to try
	}
	data, err := f.r.LoadBlobAt(ctx, now)
	if err != nil {
		return nil, loc, err
	}
	return data, now, nil
}
