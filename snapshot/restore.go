package snapshot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"snap/chunk"
	"snap/index"
	"snap/internal/ecryptfs"
	"snap/internal/fsdir"
	"snap/repo"
)

// Overwrite policies for files that exist in the target.
const (
	OverwriteAlways    = "always"
	OverwriteIfChanged = "if-changed" // size or mtime differ (the default)
	OverwriteIfNewer   = "if-newer"   // the snapshot's mtime is newer
	OverwriteNever     = "never"
)

// RestoreOptions configure Restore.
type RestoreOptions struct {
	Target     string
	Workers    int  // files written at once; 0 means 2 per CPU
	Sparse     bool // recreate the holes of sparse files
	NumericIDs bool // restore owners by number, not by name
	Overwrite  string
	// Delete removes entries of the target that the snapshot does not have
	// (within the selected part), making the target match it exactly.
	Delete bool
	DryRun bool // decide and report, change nothing
	Verify bool // reread every written file and check it against its blobs

	// Select, if set, is asked for every entry by its path in the snapshot
	// ("/tree/docs/a.txt"); false leaves it out. Descend is asked for
	// directories that Select leaves out: true still walks into them (for
	// include patterns that match deeper paths).
	Select  func(path string, isDir bool) bool
	Descend func(path string) bool

	// OnError is called for each entry that could not be restored (a damaged
	// blob, a write error); the restore goes on with the others.
	OnError func(path string, err error)
	// OnNotice is called once for conditions that are not errors.
	OnNotice func(msg string)
	// OnAction reports what is (or, with DryRun, would be) done to a path in
	// the target: "restore", "link", "unchanged", "delete".
	OnAction func(action, path string, size uint64)
	Progress func(path string, size int64)
}

// RestoreSummary counts what a restore did.
type RestoreSummary struct {
	Files     int64 `json:"files"`
	Dirs      int64 `json:"dirs"`
	Bytes     int64 `json:"bytes"`
	Unchanged int64 `json:"unchanged"`
	Deleted   int64 `json:"deleted"`
	Errors    int64 `json:"errors"`
}

type restorer struct {
	r      *repo.Repository
	opts   RestoreOptions
	asRoot bool
	ids    *nameIDs
	jobs   chan restoreJob
	sum    struct{ files, dirs, bytes, unchanged, deleted, errors atomic.Int64 }
	root   *fsdir.Dir

	links   map[[2]uint64]*linkGroup // by (device, inode)
	linksMu sync.Mutex

	// dirSlots bounds the directories restored in goroutines of their own
	// (never in a dry run, whose listing keeps the snapshot's order):
	// creating files in different directories runs in parallel, where
	// creates in one directory would wait for its lock.
	dirSlots chan struct{}
	errOnce  sync.Once
	err      error // the first error that stops the restore

	bufs sync.Pool // *repo.BlobBuffer, one per blob being written
}

// linkGroup is the first restored entry of a hard-link group; ready is
// closed once it exists (or failed to), so that a later link, perhaps in
// another directory's goroutine, never links to a name not yet created.
type linkGroup struct {
	first string
	ready chan struct{}
}

type restoreJob struct {
	dir  *fsdir.Dir
	rel  string // path in the target, for messages
	node *Node
	f    *os.File // created by the walker; nil for a dry run
	locs map[chunk.ID]index.Location
	wg   *sync.WaitGroup
}

// Restore writes the tree of sn (or, with subpath, the part of it at that
// path) into opts.Target. A directory's contents go directly into the
// target; a file is written into it under its name. Every blob is verified
// against its ID before its bytes are written; a file whose data cannot be
// read is reported to OnError and removed, never left with wrong bytes.
// Names that could escape the target are refused, and symlinks found in the
// target are replaced, never followed.
func Restore(ctx context.Context, r *repo.Repository, sn *Snapshot, subpath string, opts RestoreOptions) (RestoreSummary, error) {
	nodes, prefix, err := restoreRoot(ctx, r, sn, subpath)
	if err != nil {
		return RestoreSummary{}, err
	}
	if opts.Workers <= 0 {
		opts.Workers = 2 * runtime.NumCPU()
	}
	if opts.Overwrite == "" {
		opts.Overwrite = OverwriteIfChanged
	}
	switch opts.Overwrite {
	case OverwriteAlways, OverwriteIfChanged, OverwriteIfNewer, OverwriteNever:
	default:
		return RestoreSummary{}, fmt.Errorf("overwrite policy %q: want always, if-changed, if-newer or never", opts.Overwrite)
	}
	if opts.OnError == nil {
		opts.OnError = func(string, error) {}
	}
	if opts.OnNotice == nil {
		opts.OnNotice = func(string) {}
	}
	if opts.OnAction == nil {
		opts.OnAction = func(string, string, uint64) {}
	}
	if !opts.DryRun {
		if err := os.MkdirAll(opts.Target, 0o700); err != nil {
			return RestoreSummary{}, fmt.Errorf("restore: %w", err)
		}
	}
	rs := &restorer{r: r, opts: opts, asRoot: os.Geteuid() == 0, ids: newNameIDs(),
		jobs: make(chan restoreJob, 4*opts.Workers), links: map[[2]uint64]*linkGroup{},
		dirSlots: make(chan struct{}, runtime.NumCPU())}
	rs.bufs.New = func() any { return new(repo.BlobBuffer) }
	if !rs.asRoot && !opts.DryRun {
		opts.OnNotice("not running as root: file owners are not restored")
	}
	// A dry run looks at the target when it exists, to tell what would change.
	if rs.root, err = fsdir.Open(opts.Target); err != nil && !(opts.DryRun && errors.Is(err, os.ErrNotExist)) {
		return RestoreSummary{}, fmt.Errorf("restore: %w", err)
	}
	if rs.root != nil {
		defer rs.root.Close()
	}
	if sn.SourceKind == SourceECryptfsLower && rs.root != nil && !opts.DryRun {
		if err := checkHeaderXattrs(ctx, r, rs.root, nodes, prefix); err != nil {
			return RestoreSummary{}, err
		}
	}
	var workers sync.WaitGroup
	for i := 0; i < opts.Workers; i++ {
		workers.Add(1)
		go func() {
			defer workers.Done()
			for j := range rs.jobs {
				if ctx.Err() == nil {
					if err := rs.restoreFile(ctx, j); err != nil {
						rs.report(j.rel, err)
					}
				} else if j.f != nil {
					j.f.Close()
				}
				j.wg.Done()
			}
		}()
	}
	err = rs.restoreDir(ctx, rs.root, "", prefix, nodes)
	close(rs.jobs)
	workers.Wait()
	if err == nil {
		err = rs.err
	}
	if err == nil {
		err = ctx.Err()
	}
	s := RestoreSummary{Files: rs.sum.files.Load(), Dirs: rs.sum.dirs.Load(), Bytes: rs.sum.bytes.Load(),
		Unchanged: rs.sum.unchanged.Load(), Deleted: rs.sum.deleted.Load(), Errors: rs.sum.errors.Load()}
	return s, err
}

// restoreRoot returns the nodes to restore into the target and their path
// in the snapshot.
func restoreRoot(ctx context.Context, r *repo.Repository, sn *Snapshot, subpath string) ([]Node, string, error) {
	if subpath == "" || subpath == "/" {
		nodes, err := LoadTree(ctx, r, sn.Tree)
		return nodes, "", err
	}
	n, err := FindNode(ctx, r, sn.Tree, subpath)
	if err != nil {
		return nil, "", err
	}
	clean := "/" + trimSlashes(subpath)
	if n.Type == TypeDir {
		nodes, err := LoadTree(ctx, r, n.Subtree)
		return nodes, clean, err
	}
	return []Node{*n}, clean[:len(clean)-len(n.Name)-1], nil
}

func trimSlashes(s string) string {
	for len(s) > 0 && s[0] == '/' {
		s = s[1:]
	}
	for len(s) > 0 && s[len(s)-1] == '/' {
		s = s[:len(s)-1]
	}
	return s
}

func (rs *restorer) report(path string, err error) {
	rs.sum.errors.Add(1)
	rs.opts.OnError(path, unwrapPathError(err))
}

func joinRel(rel, name string) string {
	if rel == "" {
		return name
	}
	return rel + "/" + name
}

// restoreDir restores nodes into d (nil in a dry run when the directory does
// not exist yet). rel is d's path in the target, snapPath in the snapshot.
func (rs *restorer) restoreDir(ctx context.Context, d *fsdir.Dir, rel, snapPath string, nodes []Node) error {
	// One index transaction for all content of this directory.
	var ids []chunk.ID
	for i := range nodes {
		ids = append(ids, nodes[i].Content...)
		if nodes[i].Type == TypeDir {
			ids = append(ids, nodes[i].Subtree)
		}
	}
	locs := make(map[chunk.ID]index.Location, len(ids))
	if len(ids) > 0 {
		err := rs.r.Index().LookupMany(ids, func(i int, loc index.Location, found bool) error {
			if found {
				locs[ids[i]] = loc
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("restore %s: %w", snapPath, err)
		}
	}
	existing := map[string]bool{}
	if d != nil {
		names, err := d.Names()
		if err != nil {
			rs.report(rel, err)
		}
		for _, n := range names {
			existing[n] = true
		}
	}
	keep := map[string]bool{}
	var wg sync.WaitGroup
	defer wg.Wait()
	for i := range nodes {
		n := &nodes[i]
		if err := ctx.Err(); err != nil {
			return err
		}
		p := joinRel(rel, n.Name)
		if !ValidName(n.Name) {
			rs.report(joinRel(rel, fmt.Sprintf("%q", n.Name)), errors.New("refusing unsafe name in the snapshot"))
			continue
		}
		sp := snapPath + "/" + n.Name
		selected := rs.opts.Select == nil || rs.opts.Select(sp, n.Type == TypeDir)
		if !selected && !(n.Type == TypeDir && rs.opts.Descend != nil && rs.opts.Descend(sp)) {
			keep[n.Name] = true // not ours to delete
			continue
		}
		keep[n.Name] = true
		if n.Type == TypeDir {
			if !rs.opts.DryRun {
				select {
				case rs.dirSlots <- struct{}{}:
					wg.Add(1)
					go func(exists bool) {
						defer wg.Done()
						defer func() { <-rs.dirSlots }()
						if err := rs.dir(ctx, d, p, sp, n, exists, selected, locs); err != nil {
							rs.errOnce.Do(func() { rs.err = err })
						}
					}(existing[n.Name])
					continue
				default:
				}
			}
			if err := rs.dir(ctx, d, p, sp, n, existing[n.Name], selected, locs); err != nil {
				return err
			}
			continue
		}
		if err := rs.entry(ctx, d, p, n, existing[n.Name], locs, &wg); err != nil {
			rs.report(p, err)
		}
	}
	wg.Wait()
	if rs.opts.Delete && d != nil {
		for name := range existing {
			if keep[name] {
				continue
			}
			sp := snapPath + "/" + name
			st, err := d.Lstat(name)
			if err != nil {
				continue
			}
			if rs.opts.Select != nil && !rs.opts.Select(sp, st.Mode&unix.S_IFMT == unix.S_IFDIR) {
				continue
			}
			rs.opts.OnAction("delete", joinRel(rel, name), 0)
			rs.sum.deleted.Add(1)
			if !rs.opts.DryRun {
				if err := d.Remove(name); err != nil {
					rs.report(joinRel(rel, name), err)
				}
			}
		}
	}
	return nil
}

// dir restores one directory node and everything below it.
func (rs *restorer) dir(ctx context.Context, d *fsdir.Dir, p, sp string, n *Node, exists, selected bool, locs map[chunk.ID]index.Location) error {
	children, err := loadTreeFrom(ctx, rs.r, locs, n.Subtree)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		rs.report(p, err)
		return nil
	}
	var sub *fsdir.Dir
	if d != nil {
		if exists {
			st, err := d.Lstat(n.Name)
			if err == nil && st.Mode&unix.S_IFMT != unix.S_IFDIR {
				if rs.opts.DryRun {
					exists = false
				} else if err := d.Remove(n.Name); err != nil {
					rs.report(p, err)
					return nil
				} else {
					exists = false
				}
			}
		}
		if !exists && !rs.opts.DryRun {
			if err := d.Mkdir(n.Name, 0o700); err != nil {
				rs.report(p, err)
				return nil
			}
		}
		if exists || !rs.opts.DryRun {
			if sub, err = d.OpenDir(n.Name); err != nil {
				rs.report(p, err)
				return nil
			}
			defer sub.Close()
		}
	}
	if selected {
		rs.sum.dirs.Add(1)
	}
	if err := rs.restoreDir(ctx, sub, p, sp, children); err != nil {
		return err
	}
	// Metadata after the contents, so writing them does not change it.
	if selected && !rs.opts.DryRun {
		if err := rs.applyMeta(d, n.Name, n); err != nil {
			rs.report(p, err)
		}
	}
	return nil
}

// entry restores a non-directory node; regular files are handed to workers.
func (rs *restorer) entry(ctx context.Context, d *fsdir.Dir, p string, n *Node, exists bool, locs map[chunk.ID]index.Location, wg *sync.WaitGroup) error {
	if n.Type == TypeSocket {
		return nil
	}
	if exists && d != nil {
		st, err := d.Lstat(n.Name)
		if err != nil {
			return err
		}
		if n.Type == TypeFile && rs.upToDate(n, &st) {
			rs.opts.OnAction("unchanged", p, n.Size)
			rs.sum.unchanged.Add(1)
			if n.Links > 1 {
				if g, first := rs.firstLink(n, p); first {
					close(g.ready) // it exists already
				}
			}
			return nil
		}
		if n.Type == TypeFile && rs.opts.Overwrite == OverwriteNever || n.Type == TypeFile && rs.opts.Overwrite == OverwriteIfNewer && !n.MTime.After(time.Unix(st.Mtim.Sec, st.Mtim.Nsec)) {
			rs.opts.OnAction("unchanged", p, n.Size)
			rs.sum.unchanged.Add(1)
			return nil
		}
		if !rs.opts.DryRun {
			if err := d.Remove(n.Name); err != nil {
				return err
			}
		}
	}
	if n.Type == TypeFile && n.Links > 1 {
		g, first := rs.firstLink(n, p)
		if !first {
			rs.opts.OnAction("link", p, 0)
			rs.sum.files.Add(1)
			if rs.opts.DryRun {
				return nil
			}
			<-g.ready
			return d.Link(rs.root, g.first, n.Name)
		}
		// Created below (or failed) by the time this returns.
		defer close(g.ready)
	}
	switch n.Type {
	case TypeFile:
		rs.opts.OnAction("restore", p, n.Size)
		var f *os.File
		if !rs.opts.DryRun {
			var err error
			if f, err = d.Create(n.Name, 0o600); err != nil {
				return err
			}
		}
		wg.Add(1)
		select {
		case rs.jobs <- restoreJob{dir: d, rel: p, node: n, f: f, locs: locs, wg: wg}:
		case <-ctx.Done():
			wg.Done()
			if f != nil {
				f.Close()
			}
			return ctx.Err()
		}
		return nil
	case TypeSymlink:
		rs.opts.OnAction("restore", p, 0)
		if rs.opts.DryRun {
			return nil
		}
		if err := d.Symlink(n.LinkTarget, n.Name); err != nil {
			return err
		}
	case TypeCharDev, TypeBlockDev, TypeFIFO:
		rs.opts.OnAction("restore", p, 0)
		if rs.opts.DryRun {
			return nil
		}
		mode := uint32(unix.S_IFIFO)
		if n.Type == TypeCharDev {
			mode = unix.S_IFCHR
		} else if n.Type == TypeBlockDev {
			mode = unix.S_IFBLK
		}
		if err := d.Mknod(n.Name, mode|0o600, n.Rdev); err != nil {
			return err
		}
	}
	return rs.applyMeta(d, n.Name, n)
}

// firstLink returns n's hard-link group, and true if p is its first entry:
// then the caller must close the group's ready channel once p exists.
func (rs *restorer) firstLink(n *Node, p string) (*linkGroup, bool) {
	key := [2]uint64{n.Device, n.Inode}
	rs.linksMu.Lock()
	defer rs.linksMu.Unlock()
	if g, ok := rs.links[key]; ok {
		return g, false
	}
	g := &linkGroup{first: p, ready: make(chan struct{})}
	rs.links[key] = g
	return g, true
}

// upToDate reports whether an existing file needs no rewrite under the
// if-changed policy: same size and mtime (restore sets mtime last, so an
// interrupted write never looks done).
func (rs *restorer) upToDate(n *Node, st *unix.Stat_t) bool {
	return rs.opts.Overwrite == OverwriteIfChanged && st.Mode&unix.S_IFMT == unix.S_IFREG &&
		uint64(st.Size) == n.Size && time.Unix(st.Mtim.Sec, st.Mtim.Nsec).Equal(n.MTime)
}

func (rs *restorer) restoreFile(ctx context.Context, j restoreJob) error {
	if rs.opts.DryRun {
		rs.sum.files.Add(1)
		rs.sum.bytes.Add(int64(j.node.Size))
		return nil
	}
	werr := rs.writeContent(ctx, j)
	if werr == nil && rs.opts.Verify {
		werr = rs.verify(j)
	}
	var merr error
	if werr == nil {
		// Through the open descriptor: no path lookups, and the file is
		// never seen complete with the wrong owner or mode.
		merr = rs.applyFileMeta(j.f, j.node)
	}
	cerr := j.f.Close()
	if werr == nil {
		werr = cerr
	}
	if werr != nil {
		j.dir.Remove(j.node.Name) // never leave a file with wrong bytes behind
		return werr
	}
	rs.sum.files.Add(1)
	rs.sum.bytes.Add(int64(j.node.Size))
	if rs.opts.Progress != nil {
		rs.opts.Progress(j.rel, int64(j.node.Size))
	}
	return merr
}

// parallelBlobs is the number of blobs from which a file's content is
// loaded by several goroutines.
const parallelBlobs = 4

func (rs *restorer) writeContent(ctx context.Context, j restoreJob) error {
	holes := j.node.Holes
	sparse := rs.opts.Sparse && len(holes) > 0
	if sparse {
		if err := j.f.Truncate(int64(j.node.Size)); err != nil {
			return err
		}
	}
	content := j.node.Content
	offs := make([]uint64, len(content)+1)
	for i, id := range content {
		loc, ok := j.locs[id]
		if !ok {
			return fmt.Errorf("data blob %s: %w", id.Short(), repo.ErrBlobMissing)
		}
		offs[i+1] = offs[i] + uint64(loc.RawLength)
	}
	if offs[len(content)] != j.node.Size {
		return fmt.Errorf("content is %d bytes, the snapshot says %d: %w", offs[len(content)], j.node.Size, repo.ErrBlobCorrupt)
	}
	put := func(ctx context.Context, i int) error {
		buf := rs.bufs.Get().(*repo.BlobBuffer)
		defer rs.bufs.Put(buf)
		data, err := rs.r.LoadBlobInto(ctx, j.locs[content[i]], buf)
		if err != nil {
			return err
		}
		if uint64(len(data)) != offs[i+1]-offs[i] {
			return fmt.Errorf("data blob %s: %d bytes, the index says %d: %w", content[i].Short(), len(data), offs[i+1]-offs[i], repo.ErrBlobCorrupt)
		}
		if sparse {
			return writeOutsideHoles(j.f, data, offs[i], holes)
		}
		_, err = j.f.WriteAt(data, int64(offs[i]))
		return err
	}
	if len(content) < parallelBlobs {
		for i := range content {
			if err := put(ctx, i); err != nil {
				return err
			}
		}
		return nil
	}
	// A large file's blobs are loaded, verified and written by several
	// goroutines at once, each at its own offset: one reader per file left
	// a restore of a disk image to a single core.
	return inParallel(ctx, len(content), runtime.NumCPU(), put)
}

// writeOutsideHoles writes data at off, skipping the ranges that are holes.
func writeOutsideHoles(f *os.File, data []byte, off uint64, holes []Hole) error {
	end := off + uint64(len(data))
	pos := off
	for _, h := range holes {
		hs, he := h.Offset, h.Offset+h.Length
		if he <= pos || hs >= end {
			continue
		}
		if hs > pos {
			if _, err := f.WriteAt(data[pos-off:hs-off], int64(pos)); err != nil {
				return err
			}
		}
		pos = min(he, end)
	}
	if pos < end {
		_, err := f.WriteAt(data[pos-off:], int64(pos))
		return err
	}
	return nil
}

// verify rereads a written file and checks each piece against its blob ID.
func (rs *restorer) verify(j restoreJob) error {
	f, err := j.dir.OpenFile(j.node.Name)
	if err != nil {
		return err
	}
	defer f.Close()
	var buf []byte
	for _, id := range j.node.Content {
		if n := int(j.locs[id].RawLength); cap(buf) < n {
			buf = make([]byte, n)
		} else {
			buf = buf[:n]
		}
		if _, err := io.ReadFull(f, buf); err != nil {
			return fmt.Errorf("verify: %w", err)
		}
		if chunk.Hash(buf) != id {
			return fmt.Errorf("verify: written bytes differ from blob %s", id.Short())
		}
	}
	if n, _ := f.Read(make([]byte, 1)); n != 0 {
		return errors.New("verify: file is longer than the snapshot says")
	}
	return nil
}

// applyMeta sets ownership (as root), mode, xattrs and times, in that order:
// chown clears setuid bits, and setting an ACL after chmod keeps it intact.
func (rs *restorer) applyMeta(d *fsdir.Dir, name string, n *Node) error {
	return rs.setMeta(byName{d, name}, n)
}

// applyFileMeta is applyMeta for a regular file open for writing, through
// its descriptor.
func (rs *restorer) applyFileMeta(f *os.File, n *Node) error {
	return rs.setMeta(openFile{f}, n)
}

func (rs *restorer) setMeta(t metaTarget, n *Node) error {
	if rs.asRoot {
		uid, gid := n.UID, n.GID
		if !rs.opts.NumericIDs {
			uid, gid = rs.ids.owner(n)
		}
		if err := t.chown(uid, gid); err != nil {
			return err
		}
	}
	if n.Type != TypeSymlink {
		if err := t.chmod(n.Mode); err != nil {
			return err
		}
	}
	for _, x := range n.Xattrs {
		if err := t.setXattr(x.Name, x.Value); err != nil {
			return err
		}
	}
	mt := unix.NsecToTimespec(n.MTime.UnixNano())
	at := mt
	if !n.ATime.IsZero() {
		at = unix.NsecToTimespec(n.ATime.UnixNano())
	}
	return t.setTimes(at, mt)
}

// metaTarget is where setMeta writes: an entry by name in a directory, or
// an open file.
type metaTarget interface {
	chown(uid, gid uint32) error
	chmod(mode uint32) error
	setXattr(name string, value []byte) error
	setTimes(atime, mtime unix.Timespec) error
}

type byName struct {
	d    *fsdir.Dir
	name string
}

func (b byName) chown(uid, gid uint32) error { return b.d.Lchown(b.name, uid, gid) }
func (b byName) chmod(mode uint32) error     { return b.d.Chmod(b.name, mode) }
func (b byName) setXattr(name string, value []byte) error {
	return b.d.SetXattr(b.name, fsdir.Xattr{Name: name, Value: value})
}
func (b byName) setTimes(at, mt unix.Timespec) error { return b.d.SetTimes(b.name, at, mt) }

type openFile struct{ f *os.File }

func (o openFile) err(op string, err error) error {
	if err == nil {
		return nil
	}
	return &os.PathError{Op: op, Path: o.f.Name(), Err: err}
}
func (o openFile) chown(uid, gid uint32) error {
	return o.err("chown", unix.Fchown(int(o.f.Fd()), int(uid), int(gid)))
}
func (o openFile) chmod(mode uint32) error {
	return o.err("chmod", unix.Fchmod(int(o.f.Fd()), mode))
}
func (o openFile) setXattr(name string, value []byte) error {
	return o.err("setxattr "+name, unix.Fsetxattr(int(o.f.Fd()), name, value, 0))
}
func (o openFile) setTimes(at, mt unix.Timespec) error { return fsdir.SetFileTimes(o.f, at, mt) }

// ErrNoUserXattrs is returned when a restore target cannot hold the
// user.ecryptfs xattrs a snapshot needs.
var ErrNoUserXattrs = errors.New("the target file system does not take user xattrs")

// checkHeaderXattrs refuses to restore eCryptfs lower files that keep their
// header in the user.ecryptfs xattr onto a file system without user xattrs:
// without the header they can never be decrypted. It probes the target
// first, and walks the snapshot only when the probe fails.
func checkHeaderXattrs(ctx context.Context, r *repo.Repository, target *fsdir.Dir, nodes []Node, prefix string) error {
	const probe = ".snap-xattr-probe"
	f, err := target.Create(probe, 0o600)
	if err != nil {
		return nil // the restore itself will report why the target is not writable
	}
	f.Close()
	xerr := target.SetXattr(probe, fsdir.Xattr{Name: "user.snap-probe", Value: []byte("1")})
	target.Remove(probe)
	if xerr == nil {
		return nil
	}
	needs := 0
	var first string
	var visit func(nodes []Node, dir string) error
	visit = func(nodes []Node, dir string) error {
		for i := range nodes {
			n := &nodes[i]
			for _, x := range n.Xattrs {
				if x.Name == ecryptfs.XattrName {
					if needs == 0 {
						first = dir + "/" + n.Name
					}
					needs++
				}
			}
			if n.Type == TypeDir {
				children, err := LoadTree(ctx, r, n.Subtree)
				if err != nil {
					return err
				}
				if err := visit(children, dir+"/"+n.Name); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := visit(nodes, prefix); err != nil {
		return err
	}
	if needs == 0 {
		return nil
	}
	return fmt.Errorf("restore: %d files (such as %s) keep their eCryptfs header in the %s xattr, and %w (%v): without it they could never be decrypted; restore onto ext4, xfs or btrfs",
		needs, first, ecryptfs.XattrName, ErrNoUserXattrs, unwrapPathError(xerr))
}
