package snapshot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"snap/chunk"
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
	// OnError is called for each file or directory that could not be read;
	// the snapshot is still written without it.
	OnError func(path string, err error)
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
	}
	jobs  chan fileJob
	blobs chan blobJob

	errOnce sync.Once
	err     error
	cancel  context.CancelFunc
}

type fileJob struct {
	path   string
	node   *Node
	parent *Node // the same file in the parent snapshot, or nil
	failed *atomic.Bool
	wg     *sync.WaitGroup
}

type blobJob struct {
	id   chunk.ID
	data []byte
}

// Create backs up opts.Paths into r and writes the snapshot document. Files
// that cannot be read are reported to OnError and left out; a path that does
// not exist is an error before anything is written.
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
			if errors.Is(err, fs.ErrNotExist) {
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
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	a := &archiver{r: r, opts: opts, ids: newIDNames(), cancel: cancel,
		jobs:  make(chan fileJob, 4*opts.Workers),
		blobs: make(chan blobJob, runtime.NumCPU()),
	}
	var workers, savers sync.WaitGroup
	for i := 0; i < opts.Workers; i++ {
		workers.Add(1)
		go func() { defer workers.Done(); a.fileWorker(ctx) }()
	}
	for i := 0; i < runtime.NumCPU(); i++ {
		savers.Add(1)
		go func() { defer savers.Done(); a.blobSaver(ctx) }()
	}

	root, walkErr := a.saveRoot(ctx)
	close(a.jobs)
	workers.Wait()
	close(a.blobs)
	savers.Wait()
	if walkErr != nil {
		a.fail(walkErr)
	}
	if a.err == nil && ctx.Err() != nil {
		a.fail(ctx.Err())
	}
	if a.err != nil {
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
	}
	if sn.SourceKind == "" {
		sn.SourceKind = SourcePlain
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
	for i, p := range a.opts.Paths {
		name := filepath.Base(p)
		if name == "/" {
			name = "root"
		}
		for k := 1; used[name]; k++ {
			name = filepath.Base(p) + "-" + strconv.Itoa(k)
		}
		used[name] = true
		if err := a.saveEntry(ctx, p, name, &nodes[i], parentNodes[name], &failed[i], &wg); err != nil {
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

// saveEntry fills node for the file at path. Directories are saved before it
// returns; regular files may be queued, with wg tracking them.
func (a *archiver) saveEntry(ctx context.Context, path, name string, node *Node, parent *Node, failed *atomic.Bool, wg *sync.WaitGroup) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	fi, err := os.Lstat(path)
	if err != nil {
		a.report(path, err)
		failed.Store(true)
		return nil
	}
	*node = nodeFromInfo(name, fi, a.ids)
	switch node.Type {
	case TypeDir:
		var parentTree chunk.ID
		if parent != nil && parent.Type == TypeDir {
			parentTree = parent.Subtree
		}
		return a.saveDir(ctx, path, node, parentTree)
	case TypeSymlink:
		target, err := os.Readlink(path)
		if err != nil {
			a.report(path, err)
			failed.Store(true)
			return nil
		}
		node.LinkTarget = target
	case TypeFile:
		a.sum.total.Add(int64(node.Size))
		if a.unchanged(node, parent) {
			node.Content = parent.Content
			a.sum.filesUnchanged.Add(1)
			return nil
		}
		wg.Add(1)
		select {
		case a.jobs <- fileJob{path: path, node: node, parent: parent, failed: failed, wg: wg}:
		case <-ctx.Done():
			wg.Done()
			return ctx.Err()
		}
	}
	return nil
}

// unchanged reports whether the parent's content list can be reused without
// reading the file: same size, mtime, ctime and inode, and every blob present.
func (a *archiver) unchanged(n, p *Node) bool {
	if p == nil || p.Type != TypeFile || a.opts.Force || n.Size != p.Size || !n.MTime.Equal(p.MTime) {
		return false
	}
	if !a.opts.IgnoreCtime && !n.CTime.Equal(p.CTime) || !a.opts.IgnoreInode && n.Inode != p.Inode {
		return false
	}
	for _, id := range p.Content {
		if ok, err := a.r.Known(id); err != nil || !ok {
			return false
		}
	}
	return true
}

func (a *archiver) saveDir(ctx context.Context, path string, node *Node, parentTree chunk.ID) error {
	a.sum.dirs.Add(1)
	entries, err := os.ReadDir(path)
	if err != nil {
		a.report(path, err)
	}
	var parentNodes map[string]*Node
	if !a.opts.Force {
		parentNodes = a.loadParent(ctx, parentTree)
	}
	nodes := make([]Node, len(entries))
	failed := make([]atomic.Bool, len(entries))
	var wg sync.WaitGroup
	for i, e := range entries {
		if err := a.saveEntry(ctx, filepath.Join(path, e.Name()), e.Name(), &nodes[i], parentNodes[e.Name()], &failed[i], &wg); err != nil {
			wg.Wait()
			return err
		}
	}
	wg.Wait()
	id, err := a.saveTree(ctx, nodes, failed)
	if err != nil {
		return err
	}
	node.Subtree = id
	return nil
}

// saveTree drops failed entries, encodes the directory and stores it.
func (a *archiver) saveTree(ctx context.Context, nodes []Node, failed []atomic.Bool) (chunk.ID, error) {
	kept := nodes[:0]
	for i := range nodes {
		if !failed[i].Load() && nodes[i].Type != 0 {
			kept = append(kept, nodes[i])
		}
	}
	data, err := EncodeTree(kept)
	if err != nil {
		return chunk.ID{}, err
	}
	id, n, err := a.r.SaveBlob(ctx, pack.TreeBlob, data)
	if err != nil {
		return id, err
	}
	if n > 0 {
		a.sum.blobs.Add(1)
		a.sum.bytesAdded.Add(int64(len(data)))
		a.sum.bytesStored.Add(int64(n))
	}
	return id, nil
}

func (a *archiver) fileWorker(ctx context.Context) {
	ch := chunk.NewChunker(a.r.Config().Chunker)
	buf := make([]byte, 0, a.r.Config().Chunker.MaxSize)
	for job := range a.jobs {
		if ctx.Err() == nil {
			if err := a.saveFile(ctx, ch, buf, job); err != nil {
				if ctx.Err() != nil {
					// interrupted: the run fails as a whole
				} else if errors.Is(err, errFatal) {
					a.fail(err)
				} else {
					a.report(job.path, err)
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

func (a *archiver) saveFile(ctx context.Context, ch *chunk.Chunker, buf []byte, job fileJob) error {
	f, err := openNoAtime(job.path)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("changed from a regular file to %s while reading", fi.Mode().Type())
	}
	// Metadata from the open file, so it belongs to the bytes read.
	name := job.node.Name
	*job.node = nodeFromInfo(name, fi, a.ids)
	var content []chunk.ID
	var size uint64
	ch.Reset(f)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		data, err := ch.Next(buf)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		size += uint64(len(data))
		a.sum.bytesRead.Add(int64(len(data)))
		id := chunk.Hash(data)
		content = append(content, id)
		must, err := a.r.Reserve(id)
		if err != nil {
			return fmt.Errorf("%w: %w", errFatal, err)
		}
		if must {
			select {
			case a.blobs <- blobJob{id: id, data: slices.Clone(data)}:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	if size != job.node.Size {
		a.report(job.path, fmt.Errorf("size changed while reading (%d bytes at open, %d read); saved what was read", job.node.Size, size))
		job.node.Size = size
	}
	job.node.Content = content
	switch {
	case job.parent == nil:
		a.sum.filesNew.Add(1)
	case slices.Equal(job.parent.Content, content):
		a.sum.filesUnchanged.Add(1)
	default:
		a.sum.filesChanged.Add(1)
	}
	if a.opts.Progress != nil {
		a.opts.Progress(job.path, int64(size))
	}
	return nil
}

func openNoAtime(path string) (*os.File, error) {
	// O_NOATIME keeps backups from touching atimes; only the owner (or root) may use it.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NOATIME, 0)
	if errors.Is(err, syscall.EPERM) {
		f, err = os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	}
	return f, err
}

func (a *archiver) blobSaver(ctx context.Context) {
	for b := range a.blobs {
		if ctx.Err() != nil {
			continue
		}
		n, err := a.r.StoreBlob(ctx, pack.DataBlob, b.id, b.data)
		if err != nil {
			a.fail(fmt.Errorf("create: %w", err))
			continue
		}
		a.sum.blobs.Add(1)
		a.sum.bytesAdded.Add(int64(len(b.data)))
		a.sum.bytesStored.Add(int64(n))
	}
}
