package snapshot

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"snap/chunk"
	"snap/internal/ecryptfs"
	"snap/internal/fsdir"
	"snap/repo"
	"snap/repo/pack"
)

// CreateOptions configure Create.
type CreateOptions struct {
	Paths          []string // absolute paths to back up
	Tags           []string
	Host           string
	Username       string
	Time           time.Time // the snapshot's time; zero means now
	Parent         *Snapshot // unchanged files are taken from it without reading
	SourceKind     string
	ProgramVersion string
	Workers        int  // files read at once; 0 means 2 per CPU
	Force          bool // read every file even when the parent has it unchanged
	IgnoreCtime    bool
	IgnoreInode    bool
	// ATime records the access times of files. Off by default (as in
	// borg): reading a file moves its atime, so recording it makes every
	// backup rewrite the trees of all directories where anything was read.
	ATime bool

	// Exclude, if set, is asked for every entry (absolute path); true leaves
	// the entry (and for a directory, everything below it) out.
	Exclude func(path string, isDir bool) bool
	// ExcludeLargerThan leaves out files larger than this many bytes (0: no limit).
	ExcludeLargerThan int64
	// ExcludeIfPresent leaves out the contents of directories holding a file
	// of one of these names (the directory and the marker are kept).
	ExcludeIfPresent []string
	// ExcludeCaches does the same for directories with a valid CACHEDIR.TAG.
	ExcludeCaches bool
	// OneFileSystem does not descend into directories on other file systems
	// than their backed-up path; mount points are kept as empty directories.
	OneFileSystem bool

	// OnError is called for each file or directory that could not be read;
	// the snapshot is still written without it.
	OnError func(path string, err error)
	// OnNotice is called for things worth a line that are not errors
	// (a socket that is not backed up).
	OnNotice func(path string, msg string)
	// Progress, if set, is called as files complete (from several goroutines).
	Progress func(path string, size int64)
}

// ErrSourceMissing is wrapped by Create's error when a path to back up
// cannot be found; nothing is written then.
var ErrSourceMissing = errors.New("source path not found")

type archiver struct {
	r    *repo.Repository
	opts CreateOptions
	ids  *idNames
	sum  struct {
		filesNew, filesChanged, filesUnchanged, dirs, bytesRead, bytesAdded, bytesStored, blobs, total, errors atomic.Int64
		// For telling an eCryptfs lower tree: regular files, those with
		// encrypted names, and those read that had a lower-file header.
		files, encNames, filesRead, cipherFiles atomic.Int64
	}
	jobs  chan fileJob
	blobs chan blobJob
	// dirSlots bounds the directories walked in goroutines of their own, in
	// addition to the walk itself: a walk of unchanged files is syscalls
	// and tree decoding, which one core cannot keep up with.
	dirSlots chan struct{}
	// copies holds spare chunk buffers of copySize bytes for reuse, room
	// for all those in flight (queued, with the savers, being read): with
	// room for only two, making new ones took 0.12 s of CPU per GiB.
	copies chan []byte
	// largeFiles counts the files being read whose chunks the savers hash;
	// the last one to finish empties copies.
	largeFiles atomic.Int32
	// generation is the index generation the run started with; parentIndexed
	// says that the parent snapshot was written under it, so every blob the
	// parent names is still indexed and need not be looked up.
	generation    string
	parentIndexed bool

	errOnce sync.Once
	err     error
	cancel  context.CancelFunc
}

type fileJob struct {
	dir    *fsdir.Dir
	name   string // in dir; the node may be named differently at the root
	node   *Node
	parent *Node // the same file in the parent snapshot, or nil
	failed *atomic.Bool
	wg     *sync.WaitGroup
}

type blobJob struct {
	id   chunk.ID
	data []byte
	raw  bool // known incompressible: skip the compression attempt

	// For a chunk of a large file, the saver hashes it and decides whether
	// to store it: it writes the ID to *dst and calls done.Done().
	dst  *chunk.ID
	done *sync.WaitGroup
}

// hashInSaversFrom is the file size from which chunks are hashed by the
// blob savers instead of the reading worker: a single large file is read
// by one worker, and chunking plus SHA-256 on one core ran at 390 MB/s,
// half of what both cores chunk and hash.
const hashInSaversFrom = 32 << 20

// parallelFrom is the file size from which the cuts of a file are found by
// several goroutines (chunk.Parallel), in segments of parallelSegment bytes:
// a single large file was chunked on one core, which capped a backup of a
// disk image at one core's 725 MB/s of chunking.
const (
	parallelSegment = 64 << 20
	parallelFrom    = 2 * parallelSegment
)

// cacheDirSignature starts every valid CACHEDIR.TAG (bford.info/cachedir).
const cacheDirSignature = "Signature: 8a477f597d28d172789f06886806bc55"

// Create backs up opts.Paths into r and writes the snapshot document. Files
// that cannot be read are reported to OnError and left out; a path that does
// not exist is an error before anything is written. If ctx is cancelled,
// the blobs stored so far are still made durable and indexed, so the next run
// does not store them again; no snapshot is written.
func Create(ctx context.Context, r *repo.Repository, opts CreateOptions) (*Snapshot, error) {
	start := time.Now()
	if len(opts.Paths) == 0 {
		return nil, errors.New("create: no paths given")
	}
	for _, p := range opts.Paths {
		if !filepath.IsAbs(p) {
			return nil, fmt.Errorf("create: path %q is not absolute", p)
		}
		if _, err := os.Lstat(p); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil, fmt.Errorf("create: %s: %w", p, ErrSourceMissing)
			}
			return nil, fmt.Errorf("create: %w", err)
		}
	}
	if opts.Workers <= 0 {
		opts.Workers = 2 * runtime.NumCPU()
	}
	if opts.OnError == nil {
		opts.OnError = func(string, error) {}
	}
	if opts.OnNotice == nil {
		opts.OnNotice = func(string, string) {}
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	a := &archiver{r: r, opts: opts, ids: newIDNames(), cancel: cancel,
		jobs:     make(chan fileJob, 4*opts.Workers),
		blobs:    make(chan blobJob, runtime.NumCPU()),
		dirSlots: make(chan struct{}, 2*runtime.NumCPU()),
		copies:   make(chan []byte, 3*runtime.NumCPU()),
	}
	// The caller holds the write lock, so no prune can remove blobs (and
	// change the generation) before the snapshot is written.
	gen, err := r.Index().Generation()
	if err != nil {
		return nil, fmt.Errorf("create: %w", err)
	}
	a.generation = gen
	a.parentIndexed = opts.Parent != nil && opts.Parent.IndexGeneration == gen && !opts.Force
	var workers, savers sync.WaitGroup
	for i := 0; i < opts.Workers; i++ {
		workers.Add(1)
		go func() { defer workers.Done(); a.fileWorker(runCtx) }()
	}
	for i := 0; i < runtime.NumCPU(); i++ {
		savers.Add(1)
		go func() { defer savers.Done(); a.blobSaver(runCtx) }()
	}

	root, walkErr := a.saveRoot(runCtx)
	close(a.jobs)
	workers.Wait()
	close(a.blobs)
	savers.Wait()
	if walkErr != nil {
		a.fail(walkErr)
	}
	if a.err == nil && runCtx.Err() != nil {
		a.fail(runCtx.Err())
	}
	if a.err != nil {
		if ctx.Err() != nil {
			// Interrupted: keep what is stored so far for the next run.
			r.Flush(context.WithoutCancel(ctx))
			return nil, fmt.Errorf("create interrupted; the data stored so far is kept and reused by the next run: %w", ctx.Err())
		}
		return nil, a.err
	}
	if err := r.Flush(ctx); err != nil {
		return nil, fmt.Errorf("create: %w", err)
	}
	t := opts.Time
	if t.IsZero() {
		t = start
	}
	sn := &Snapshot{
		Time: t, Tree: root, Paths: opts.Paths, Hostname: opts.Host, Username: opts.Username,
		UID: uint32(os.Getuid()), GID: uint32(os.Getgid()), Tags: opts.Tags,
		SourceKind: opts.SourceKind, ProgramVersion: opts.ProgramVersion,
		IndexGeneration: a.generation,
	}
	if sn.SourceKind == "" {
		sn.SourceKind = a.sourceKind()
	}
	if opts.Parent != nil {
		id := opts.Parent.ID
		sn.Parent = &id
	}
	s := &a.sum
	sn.Summary = &Summary{
		FilesNew: s.filesNew.Load(), FilesChanged: s.filesChanged.Load(), FilesUnchanged: s.filesUnchanged.Load(),
		Dirs: s.dirs.Load(), BytesRead: s.bytesRead.Load(), BytesAdded: s.bytesAdded.Load(),
		BytesStored: s.bytesStored.Load(), BlobsAdded: s.blobs.Load(), TotalSize: s.total.Load(),
		Errors: s.errors.Load(), Duration: time.Since(start).Seconds(),
	}
	if err := Save(ctx, r, sn); err != nil {
		return nil, fmt.Errorf("create: %w", err)
	}
	return sn, nil
}

// fail records the first fatal error and stops the run.
func (a *archiver) fail(err error) {
	a.errOnce.Do(func() {
		a.err = err
		a.cancel()
	})
}

func (a *archiver) report(path string, err error) {
	a.sum.errors.Add(1)
	a.opts.OnError(path, err)
}

// saveRoot saves the root tree: one node per backed-up path.
func (a *archiver) saveRoot(ctx context.Context) (chunk.ID, error) {
	var parentNodes map[string]*Node
	if a.opts.Parent != nil && !a.opts.Force {
		parentNodes = a.loadParent(ctx, a.opts.Parent.Tree)
	}
	nodes := make([]Node, len(a.opts.Paths))
	failed := make([]atomic.Bool, len(nodes))
	used := map[string]bool{}
	var wg sync.WaitGroup
	var dirs []*fsdir.Dir
	defer func() {
		wg.Wait()
		for _, d := range dirs {
			d.Close()
		}
	}()
	for i, p := range a.opts.Paths {
		name := filepath.Base(p)
		if name == "/" {
			name = "root"
		}
		for k := 1; used[name]; k++ {
			name = filepath.Base(p) + "-" + strconv.Itoa(k)
		}
		used[name] = true
		parentDir, err := fsdir.Open(filepath.Dir(p))
		if err != nil {
			a.report(p, err)
			failed[i].Store(true)
			continue
		}
		dirs = append(dirs, parentDir)
		base := filepath.Base(p)
		if p == "/" {
			base = "."
		}
		st, err := parentDir.Lstat(base)
		if err != nil {
			a.report(p, err)
			failed[i].Store(true)
			continue
		}
		if err := a.saveEntry(ctx, parentDir, base, name, p, &st, st.Dev, &nodes[i], parentNodes[name], nil, &failed[i], &wg); err != nil {
			return chunk.ID{}, err
		}
	}
	wg.Wait()
	return a.saveTree(ctx, nodes, failed)
}

// loadParent returns the nodes of a parent tree by name; a parent that cannot
// be read only means files are read again.
func (a *archiver) loadParent(ctx context.Context, id chunk.ID) map[string]*Node {
	if id.IsNull() {
		return nil
	}
	nodes, err := LoadTree(ctx, a.r, id)
	if err != nil {
		return nil
	}
	m := make(map[string]*Node, len(nodes))
	for i := range nodes {
		m[nodes[i].Name] = &nodes[i]
	}
	return m
}

// nodeFromStat fills a node from lstat data, with the atime only when asked
// for.
func (a *archiver) nodeFromStat(name string, st *unix.Stat_t) Node {
	n := nodeFromStat(name, st, a.ids)
	if !a.opts.ATime {
		n.ATime = time.Time{}
	}
	return n
}

// sameInode reports whether lstat data shows the file as the parent saw it:
// then its metadata (xattrs included, whose changes move ctime) is unchanged.
func (a *archiver) sameInode(n, p *Node) bool {
	return p != nil && p.Type == n.Type && n.Size == p.Size && n.MTime.Equal(p.MTime) &&
		n.CTime.Equal(p.CTime) && n.Inode == p.Inode && !a.opts.Force
}

// saveEntry fills node for the entry name of dir. Directories are saved
// before it returns; regular files may be queued, with wg tracking them.
func (a *archiver) saveEntry(ctx context.Context, dir *fsdir.Dir, name, nodeName, path string, st *unix.Stat_t, rootDev uint64, node *Node, parent *Node, present map[chunk.ID]bool, failed *atomic.Bool, wg *sync.WaitGroup) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	*node = a.nodeFromStat(nodeName, st)
	if node.Type == TypeSocket {
		a.opts.OnNotice(path, "socket not backed up (it only exists while a program listens on it)")
		failed.Store(true)
		return nil
	}
	if a.sameInode(node, parent) {
		node.Xattrs = parent.Xattrs
	} else if xs, err := dir.Xattrs(name); err != nil {
		a.report(path, err)
	} else {
		for _, x := range xs {
			node.Xattrs = append(node.Xattrs, Xattr{Name: x.Name, Value: x.Value})
		}
	}
	switch node.Type {
	case TypeDir:
		var parentTree chunk.ID
		if parent != nil && parent.Type == TypeDir {
			parentTree = parent.Subtree
		}
		sub, err := dir.OpenDir(name)
		if err != nil {
			a.report(path, err)
			failed.Store(true)
			return nil
		}
		skip := a.opts.OneFileSystem && st.Dev != rootDev
		select {
		case a.dirSlots <- struct{}{}:
			// A free slot: walk the directory alongside; saveDir of the
			// directory holding it waits for it through wg.
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-a.dirSlots }()
				defer sub.Close()
				if err := a.saveDir(ctx, sub, path, node, parentTree, rootDev, skip); err != nil {
					a.fail(err)
				}
			}()
			return nil
		default:
			defer sub.Close()
			return a.saveDir(ctx, sub, path, node, parentTree, rootDev, skip)
		}
	case TypeSymlink:
		if parent != nil && a.sameInode(node, parent) {
			node.LinkTarget = parent.LinkTarget
			return nil
		}
		target, err := dir.Readlink(name)
		if err != nil {
			a.report(path, err)
			failed.Store(true)
			return nil
		}
		node.LinkTarget = target
	case TypeFile:
		a.sum.total.Add(int64(node.Size))
		a.sum.files.Add(1)
		if ecryptfs.IsEncryptedName(name) {
			a.sum.encNames.Add(1)
		}
		if a.unchanged(node, parent, present) {
			node.Content, node.Holes = parent.Content, parent.Holes
			node.ListDepth, node.Lists = parent.ListDepth, parent.Lists
			a.sum.filesUnchanged.Add(1)
			if a.opts.Progress != nil {
				a.opts.Progress(path, int64(node.Size))
			}
			return nil
		}
		wg.Add(1)
		select {
		case a.jobs <- fileJob{dir: dir, name: name, node: node, parent: parent, failed: failed, wg: wg}:
		case <-ctx.Done():
			wg.Done()
			return ctx.Err()
		}
	}
	return nil
}

// unchanged reports whether the parent's content list can be reused without
// reading the file: same size, mtime, ctime and inode, and every blob present.
func (a *archiver) unchanged(n, p *Node, present map[chunk.ID]bool) bool {
	if p == nil || p.Type != TypeFile || a.opts.Force || n.Size != p.Size || !n.MTime.Equal(p.MTime) {
		return false
	}
	if !a.opts.IgnoreCtime && !n.CTime.Equal(p.CTime) || !a.opts.IgnoreInode && n.Inode != p.Inode {
		return false
	}
	if a.parentIndexed {
		return true
	}
	for _, id := range p.Content {
		if present != nil {
			if !present[id] {
				return false
			}
		} else if ok, err := a.r.Known(id); err != nil || !ok {
			return false
		}
	}
	return true
}

// presentContent checks in one index transaction which content blobs of the
// parent's files are still in the repository, so that reusing an unchanged
// file costs no index lookup of its own. It returns nil when the parent's
// blobs are known to be indexed (parentIndexed): then unchanged looks up
// nothing.
func (a *archiver) presentContent(names []string, parent map[string]*Node) map[chunk.ID]bool {
	if a.parentIndexed {
		return nil
	}
	var ids []chunk.ID
	for _, name := range names {
		if p := parent[name]; p != nil && p.Type == TypeFile {
			ids = append(ids, p.Content...)
		}
	}
	present := make(map[chunk.ID]bool, len(ids))
	if len(ids) == 0 {
		return present
	}
	var notIndexed []chunk.ID
	err := a.r.Index().HasMany(ids, func(i int, found bool) {
		if found {
			present[ids[i]] = true
		} else {
			notIndexed = append(notIndexed, ids[i])
		}
	})
	if err != nil {
		return nil // fall back to one lookup per blob
	}
	for _, id := range notIndexed {
		if ok, err := a.r.Known(id); err == nil && ok { // stored earlier in this run
			present[id] = true
		}
	}
	return present
}

// excludedContents reports whether a directory is marked to be backed up
// empty, and which marker file to keep.
func (a *archiver) excludedContents(d *fsdir.Dir) (bool, string) {
	for _, name := range a.opts.ExcludeIfPresent {
		if _, err := d.Lstat(name); err == nil {
			return true, name
		}
	}
	if a.opts.ExcludeCaches {
		if f, err := d.OpenFile("CACHEDIR.TAG"); err == nil {
			buf := make([]byte, len(cacheDirSignature))
			_, err := io.ReadFull(f, buf)
			f.Close()
			if err == nil && bytes.Equal(buf, []byte(cacheDirSignature)) {
				return true, "CACHEDIR.TAG"
			}
		}
	}
	return false, ""
}

func (a *archiver) saveDir(ctx context.Context, d *fsdir.Dir, path string, node *Node, parentTree chunk.ID, rootDev uint64, empty bool) error {
	a.sum.dirs.Add(1)
	var names []string
	if !empty {
		var err error
		if names, err = d.Names(); err != nil {
			a.report(path, err)
		}
		if skip, keep := a.excludedContents(d); skip {
			names = []string{keep}
		}
	}
	var parentNodes map[string]*Node
	if !a.opts.Force {
		parentNodes = a.loadParent(ctx, parentTree)
	}
	present := a.presentContent(names, parentNodes)
	nodes := make([]Node, len(names))
	failed := make([]atomic.Bool, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		p := path + "/" + name
		st, err := d.Lstat(name)
		if err != nil {
			if !errors.Is(err, unix.ENOENT) { // vanished since the listing: nothing to save
				a.report(p, err)
			}
			failed[i].Store(true)
			continue
		}
		isDir := st.Mode&unix.S_IFMT == unix.S_IFDIR
		if a.opts.Exclude != nil && a.opts.Exclude(p, isDir) ||
			a.opts.ExcludeLargerThan > 0 && st.Mode&unix.S_IFMT == unix.S_IFREG && st.Size > a.opts.ExcludeLargerThan {
			failed[i].Store(true)
			continue
		}
		if err := a.saveEntry(ctx, d, name, name, p, &st, rootDev, &nodes[i], parentNodes[name], present, &failed[i], &wg); err != nil {
			wg.Wait()
			return err
		}
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return err // a subdirectory failed, or the run was interrupted
	}
	if a.sameAsParent(nodes, failed, parentNodes) {
		// Nothing changed: the parent's tree (just read, so present) is this
		// directory's tree, without encoding, hashing and looking it up again.
		node.Subtree = parentTree
		return nil
	}
	id, err := a.saveTree(ctx, nodes, failed)
	if err != nil {
		return err
	}
	node.Subtree = id
	return nil
}

// sameAsParent reports whether the saved entries of a directory are exactly
// the parent snapshot's.
func (a *archiver) sameAsParent(nodes []Node, failed []atomic.Bool, parent map[string]*Node) bool {
	if parent == nil {
		return false
	}
	n := 0
	for i := range nodes {
		if failed[i].Load() || nodes[i].Type == 0 {
			continue
		}
		p := parent[nodes[i].Name]
		if p == nil || !sameNode(&nodes[i], p) {
			return false
		}
		n++
	}
	return n == len(parent)
}

// saveTree drops failed entries, encodes the directory and stores it.
func (a *archiver) saveTree(ctx context.Context, nodes []Node, failed []atomic.Bool) (chunk.ID, error) {
	kept := nodes[:0]
	for i := range nodes {
		if !failed[i].Load() && nodes[i].Type != 0 {
			kept = append(kept, nodes[i])
		}
	}
	return saveTree(ctx, a.r, kept, func(raw, stored int) {
		a.sum.blobs.Add(1)
		a.sum.bytesAdded.Add(int64(raw))
		a.sum.bytesStored.Add(int64(stored))
	})
}

func (a *archiver) fileWorker(ctx context.Context) {
	// The chunker (its tables take a quarter of a millisecond to compute)
	// and the buffer are made with the first file to read: a no-change
	// backup reads none. The buffer has room for a typical chunk; the
	// chunker grows it for a larger one, which the worker keeps until the
	// file is done. Reserving the largest chunk (4 MiB by default) for every
	// worker up front raised the GC's target, which scales with the heap, by
	// that much.
	var ch *chunk.Chunker
	var buf []byte
	p := a.r.Config().Chunker
	typical := int(min(p.MaxSize, 2*p.AvgSize))
	for job := range a.jobs {
		if ctx.Err() == nil {
			if ch == nil {
				ch = chunk.NewChunker(p)
				buf = make([]byte, 0, typical)
			}
			err := a.saveFile(ctx, ch, &buf, job)
			if cap(buf) > typical {
				buf = make([]byte, 0, typical) // let a large file's buffer go
			}
			if err != nil {
				if ctx.Err() != nil {
					// interrupted: the run fails as a whole
				} else if errors.Is(err, errFatal) {
					a.fail(err)
				} else {
					a.report(job.dir.Join(job.name), err)
					job.failed.Store(true)
				}
			}
		}
		job.wg.Done()
	}
}

// errFatal marks errors that stop the whole run (repository errors), as
// opposed to a file that cannot be read.
var errFatal = errors.New("fatal")

func (a *archiver) saveFile(ctx context.Context, ch *chunk.Chunker, buf *[]byte, job fileJob) error {
	name := job.name
	f, err := job.dir.OpenFile(name)
	if err != nil {
		return unwrapPathError(err)
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return fmt.Errorf("changed from a regular file to another type while reading")
	}
	// Metadata from the open file, so it belongs to the bytes read.
	xattrs := job.node.Xattrs
	*job.node = a.nodeFromStat(job.node.Name, &st)
	job.node.Xattrs = xattrs
	if st.Blocks*512 < st.Size {
		holes, err := fsdir.Holes(f, st.Size)
		if err != nil {
			return err
		}
		for _, h := range holes {
			job.node.Holes = append(job.node.Holes, Hole{Offset: uint64(h[0]), Length: uint64(h[1])})
		}
	}
	var content []chunk.ID
	var size uint64
	a.sum.filesRead.Add(1)
	next := ch.Next
	rawFrom := -1 // index of the first chunk known to be incompressible
	if hdr, ok := cipherLayout(f, st.Size, xattrs); ok {
		// eCryptfs ciphertext: the header (which changes on every write) is a
		// blob of its own, and the extents are cut at fixed, extent-aligned
		// places, so an edit of one page stores one small chunk.
		a.sum.cipherFiles.Add(1)
		next = chunk.NewFixed(f, int(hdr), CipherChunkSize).Next
		rawFrom = 0
		if hdr > 0 {
			rawFrom = 1
		}
	} else if st.Size >= parallelFrom {
		par := chunk.NewParallel(f, st.Size, a.r.Config().Chunker, runtime.NumCPU(), parallelSegment)
		defer par.Close()
		next = par.Next
	} else {
		ch.Reset(f)
	}
	inSavers := rawFrom < 0 && st.Size >= hashInSaversFrom
	if inSavers {
		a.largeFiles.Add(1)
		defer a.endLargeFile() // after pending.Wait below
	}
	// IDs hashed by the savers land in blocks that never move.
	var hashed [][]chunk.ID
	var pending sync.WaitGroup
	defer pending.Wait() // the savers write into hashed until then
	for i := 0; ; i++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		// A chunk the savers hash is read straight into the buffer handed to
		// them: copying it there cost a memmove of the whole file.
		dst := *buf
		if inSavers {
			dst = a.chunkBuffer()
		}
		data, err := next(dst)
		if inSavers && (err != nil || cap(data) > cap(dst)) {
			a.recycle(dst) // not handed over: an error, or a larger chunk read elsewhere
		} else if !inSavers && cap(data) > cap(*buf) {
			*buf = data[:0]
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return err
		}
		size += uint64(len(data))
		a.sum.bytesRead.Add(int64(len(data)))
		if inSavers {
			if len(hashed) == 0 || len(hashed[len(hashed)-1]) == cap(hashed[len(hashed)-1]) {
				hashed = append(hashed, make([]chunk.ID, 0, 256))
			}
			blk := &hashed[len(hashed)-1]
			*blk = append(*blk, chunk.ID{})
			pending.Add(1)
			select {
			case a.blobs <- blobJob{data: data, dst: &(*blk)[len(*blk)-1], done: &pending}:
			case <-ctx.Done():
				pending.Done()
				a.recycle(data)
				return ctx.Err()
			}
			continue
		}
		id := chunk.Hash(data)
		content = append(content, id)
		must, err := a.r.Reserve(id)
		if err != nil {
			return fmt.Errorf("%w: %w", errFatal, err)
		}
		if must {
			select {
			case a.blobs <- blobJob{id: id, data: slices.Clone(data), raw: rawFrom >= 0 && i >= rawFrom}:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	if inSavers {
		pending.Wait()
		if err := ctx.Err(); err != nil {
			return err // a saver failed: the run stops
		}
		for _, blk := range hashed {
			content = append(content, blk...)
		}
	}
	if size != job.node.Size {
		a.report(job.dir.Join(name), fmt.Errorf("size changed while reading (%d bytes at open, %d read); saved what was read", job.node.Size, size))
		job.node.Size = size
		job.node.Holes = clipHoles(job.node.Holes, size)
	}
	job.node.Content = content
	if job.parent != nil && slices.Equal(job.parent.Content, content) {
		job.node.ListDepth, job.node.Lists = job.parent.ListDepth, job.parent.Lists
	} else if err := saveContentLists(ctx, a.r, job.node, func(raw, stored int) {
		a.sum.blobs.Add(1)
		a.sum.bytesAdded.Add(int64(raw))
		a.sum.bytesStored.Add(int64(stored))
	}); err != nil {
		return fmt.Errorf("%w: %w", errFatal, err)
	}
	switch {
	case job.parent == nil:
		a.sum.filesNew.Add(1)
	case slices.Equal(job.parent.Content, content):
		a.sum.filesUnchanged.Add(1)
	default:
		a.sum.filesChanged.Add(1)
	}
	if a.opts.Progress != nil {
		a.opts.Progress(job.dir.Join(name), int64(size))
	}
	return nil
}

// CipherChunkSize is the piece size for eCryptfs extents: one 4 KiB extent,
// so an in-place edit of one page stores that page plus the 8 KiB header
// (mostly zeros, so it compresses to little). Pieces of two extents halved
// the index entries but stored twice the changed bytes for the scattered
// page writes of a database (bench/run -corpus cipher).
const CipherChunkSize = ecryptfs.ExtentSize

// cipherLayout reports whether an open file is an eCryptfs lower file, and
// the size of the header at its front (0 when the header is kept in the
// user.ecryptfs xattr and the file holds extents only).
func cipherLayout(f *os.File, size int64, xattrs []Xattr) (int64, bool) {
	for _, x := range xattrs {
		if x.Name == ecryptfs.XattrName {
			h, err := ecryptfs.ParseHeader(x.Value)
			return 0, err == nil && h.MetadataInXattr && h.LowerSize() == size
		}
	}
	if size < ecryptfs.HeaderSize || (size-ecryptfs.HeaderSize)%ecryptfs.ExtentSize != 0 {
		return 0, false
	}
	var head [ecryptfs.HeaderSize]byte
	if _, err := f.ReadAt(head[:], 0); err != nil {
		return 0, false
	}
	h, err := ecryptfs.ParseHeader(head[:])
	if err != nil || h.LowerSize() != size {
		return 0, false
	}
	return h.Size(), true
}

// sourceKind tells an eCryptfs lower tree from plain files: most files carry
// encrypted names, or most files read had lower-file headers.
func (a *archiver) sourceKind() string {
	s := &a.sum
	if files := s.files.Load(); files > 0 && 2*s.encNames.Load() >= files {
		return SourceECryptfsLower
	}
	if read := s.filesRead.Load(); read > 0 && 2*s.cipherFiles.Load() >= read {
		return SourceECryptfsLower
	}
	return SourcePlain
}

// clipHoles drops the parts of holes beyond size.
func clipHoles(holes []Hole, size uint64) []Hole {
	out := holes[:0]
	for _, h := range holes {
		if h.Offset >= size {
			break
		}
		h.Length = min(h.Length, size-h.Offset)
		out = append(out, h)
	}
	return out
}

func unwrapPathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func (a *archiver) blobSaver(ctx context.Context) {
	for b := range a.blobs {
		a.saveBlobJob(ctx, b)
		if b.done != nil {
			b.done.Done()
		}
		a.recycle(b.data) // stored: the pack has its own copy
	}
}

// copySize is the size of the reused chunk buffers of large files: twice
// the default average chunk, which most chunks of large files fit (a larger
// chunk is read into a buffer of its own).
const copySize = 2 << 20

// chunkBuffer returns a buffer for reading a chunk of a large file into,
// which a blob saver recycles once the chunk is stored: a new buffer per
// chunk made a gigabyte of garbage per gigabyte read, and its page faults
// were much of a backup's system time.
func (a *archiver) chunkBuffer() []byte {
	select {
	case b := <-a.copies:
		return b[:0]
	default:
		return make([]byte, 0, copySize)
	}
}

// endLargeFile empties copies when no large file is being read any more: the
// buffers would otherwise stay live, and the collector's target with them,
// for the rest of the backup. It runs after the file's chunks are stored.
func (a *archiver) endLargeFile() {
	if a.largeFiles.Add(-1) > 0 {
		return
	}
	for {
		select {
		case <-a.copies:
		default:
			return
		}
	}
}

// recycle keeps a buffer made by chunkBuffer for reuse if there is room.
func (a *archiver) recycle(b []byte) {
	if cap(b) != copySize {
		return
	}
	select {
	case a.copies <- b:
	default:
	}
}

func (a *archiver) saveBlobJob(ctx context.Context, b blobJob) {
	if ctx.Err() != nil {
		return
	}
	if b.dst != nil {
		b.id = chunk.Hash(b.data)
		*b.dst = b.id
		must, err := a.r.Reserve(b.id)
		if err != nil {
			a.fail(fmt.Errorf("create: %w", err))
			return
		}
		if !must {
			return
		}
	}
	store := a.r.StoreBlob
	if b.raw {
		store = a.r.StoreIncompressible
	}
	n, err := store(ctx, pack.DataBlob, b.id, b.data)
	if err != nil {
		a.fail(fmt.Errorf("create: %w", err))
		return
	}
	a.sum.blobs.Add(1)
	a.sum.bytesAdded.Add(int64(len(b.data)))
	a.sum.bytesStored.Add(int64(n))
}
