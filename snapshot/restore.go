package snapshot

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"snap/chunk"
	"snap/index"
	"snap/repo"
)

// RestoreOptions configure Restore.
type RestoreOptions struct {
	Target  string
	Workers int // files written at once; 0 means 2 per CPU
	// OnError is called for each file that could not be restored (a damaged
	// blob, a write error); the restore goes on with the others.
	OnError  func(path string, err error)
	Progress func(path string, size int64)
}

// RestoreSummary counts what a restore did.
type RestoreSummary struct {
	Files  int64 `json:"files"`
	Dirs   int64 `json:"dirs"`
	Bytes  int64 `json:"bytes"`
	Errors int64 `json:"errors"`
}

type restorer struct {
	r       *repo.Repository
	opts    RestoreOptions
	asRoot  bool
	jobs    chan restoreJob
	sum     struct{ files, dirs, bytes, errors atomic.Int64 }
	dirTime []dirMeta
	mu      sync.Mutex
}

type restoreJob struct {
	path string
	node *Node
	locs map[chunk.ID]index.Location
	wg   *sync.WaitGroup
}

type dirMeta struct {
	path string
	node Node
}

// Restore writes the tree of sn into opts.Target. Every blob is verified
// against its ID before its bytes are written; a file whose data cannot be
// read is reported to OnError and removed, never left with wrong bytes.
// Names in the tree that could escape the target are refused, and existing
// symlinks in the target are replaced, never followed.
func Restore(ctx context.Context, r *repo.Repository, sn *Snapshot, opts RestoreOptions) (RestoreSummary, error) {
	if opts.Workers <= 0 {
		opts.Workers = 2 * runtime.NumCPU()
	}
	if opts.OnError == nil {
		opts.OnError = func(string, error) {}
	}
	if err := os.MkdirAll(opts.Target, 0o700); err != nil {
		return RestoreSummary{}, fmt.Errorf("restore: %w", err)
	}
	rs := &restorer{r: r, opts: opts, asRoot: os.Geteuid() == 0, jobs: make(chan restoreJob, 4*opts.Workers)}
	var workers sync.WaitGroup
	for i := 0; i < opts.Workers; i++ {
		workers.Add(1)
		go func() {
			defer workers.Done()
			for j := range rs.jobs {
				if ctx.Err() == nil {
					if err := rs.restoreFile(ctx, j); err != nil {
						rs.report(j.path, err)
					}
				}
				j.wg.Done()
			}
		}()
	}
	err := rs.restoreTree(ctx, opts.Target, sn.Tree)
	close(rs.jobs)
	workers.Wait()
	if err == nil {
		err = ctx.Err()
	}
	// Directory metadata last, deepest first, so writing their contents does not change it.
	for i := len(rs.dirTime) - 1; i >= 0; i-- {
		d := rs.dirTime[i]
		if e := rs.applyMeta(d.path, &d.node); e != nil {
			rs.report(d.path, e)
		}
	}
	s := RestoreSummary{Files: rs.sum.files.Load(), Dirs: rs.sum.dirs.Load(), Bytes: rs.sum.bytes.Load(), Errors: rs.sum.errors.Load()}
	return s, err
}

func (rs *restorer) report(path string, err error) {
	rs.sum.errors.Add(1)
	rs.opts.OnError(path, err)
}

func (rs *restorer) restoreTree(ctx context.Context, dir string, id chunk.ID) error {
	nodes, err := LoadTree(ctx, rs.r, id)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		rs.report(dir, err)
		return nil
	}
	// One index transaction for all content of this directory.
	var ids []chunk.ID
	for i := range nodes {
		ids = append(ids, nodes[i].Content...)
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
			return fmt.Errorf("restore %s: %w", dir, err)
		}
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	for i := range nodes {
		n := &nodes[i]
		if err := ctx.Err(); err != nil {
			return err
		}
		if !ValidName(n.Name) {
			rs.report(filepath.Join(dir, fmt.Sprintf("%q", n.Name)), fmt.Errorf("refusing unsafe name"))
			continue
		}
		p := filepath.Join(dir, n.Name)
		switch n.Type {
		case TypeDir:
			if err := rs.makeDir(p); err != nil {
				rs.report(p, err)
				continue
			}
			rs.sum.dirs.Add(1)
			if err := rs.restoreTree(ctx, p, n.Subtree); err != nil {
				return err
			}
			rs.mu.Lock()
			rs.dirTime = append(rs.dirTime, dirMeta{p, *n})
			rs.mu.Unlock()
		case TypeFile:
			wg.Add(1)
			select {
			case rs.jobs <- restoreJob{path: p, node: n, locs: locs, wg: &wg}:
			case <-ctx.Done():
				wg.Done()
				return ctx.Err()
			}
		case TypeSymlink:
			if err := rs.replace(p); err != nil {
				rs.report(p, err)
				continue
			}
			if err := os.Symlink(n.LinkTarget, p); err != nil {
				rs.report(p, err)
				continue
			}
			if err := rs.applyMeta(p, n); err != nil {
				rs.report(p, err)
			}
		case TypeCharDev, TypeBlockDev, TypeFIFO:
			if err := rs.replace(p); err != nil {
				rs.report(p, err)
				continue
			}
			mode := uint32(unix.S_IFIFO)
			if n.Type == TypeCharDev {
				mode = unix.S_IFCHR
			} else if n.Type == TypeBlockDev {
				mode = unix.S_IFBLK
			}
			if err := unix.Mknod(p, mode|0o600, int(n.Rdev)); err != nil {
				rs.report(p, err)
				continue
			}
			if err := rs.applyMeta(p, n); err != nil {
				rs.report(p, err)
			}
		case TypeSocket:
			// A socket cannot be restored: it only exists while a program listens on it.
		}
	}
	return nil
}

// makeDir makes sure p is a real directory (not a symlink to one).
func (rs *restorer) makeDir(p string) error {
	fi, err := os.Lstat(p)
	if err == nil && fi.IsDir() {
		return nil
	}
	if err == nil {
		if err := os.Remove(p); err != nil {
			return err
		}
	}
	return os.Mkdir(p, 0o700)
}

// replace removes whatever non-directory is at p, so it can be created anew.
func (rs *restorer) replace(p string) error {
	fi, err := os.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.IsDir() {
		return os.RemoveAll(p)
	}
	return os.Remove(p)
}

func (rs *restorer) restoreFile(ctx context.Context, j restoreJob) error {
	if err := rs.replace(j.path); err != nil {
		return err
	}
	// O_EXCL|O_NOFOLLOW: never write through a symlink planted in the target.
	f, err := os.OpenFile(j.path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return err
	}
	var written uint64
	werr := func() error {
		for _, id := range j.node.Content {
			loc, ok := j.locs[id]
			if !ok {
				return fmt.Errorf("data blob %s: %w", id.Short(), repo.ErrBlobMissing)
			}
			data, err := rs.r.LoadBlobAt(ctx, loc)
			if err != nil {
				return err
			}
			if _, err := f.Write(data); err != nil {
				return err
			}
			written += uint64(len(data))
		}
		if written != j.node.Size {
			return fmt.Errorf("content is %d bytes, the snapshot says %d: %w", written, j.node.Size, repo.ErrBlobCorrupt)
		}
		return nil
	}()
	cerr := f.Close()
	if werr == nil {
		werr = cerr
	}
	if werr != nil {
		os.Remove(j.path) // never leave a file with wrong bytes behind
		return werr
	}
	rs.sum.files.Add(1)
	rs.sum.bytes.Add(int64(written))
	if rs.opts.Progress != nil {
		rs.opts.Progress(j.path, int64(written))
	}
	return rs.applyMeta(j.path, j.node)
}

// applyMeta sets ownership (as root), mode and times, never following a symlink.
func (rs *restorer) applyMeta(p string, n *Node) error {
	if rs.asRoot {
		if err := os.Lchown(p, int(n.UID), int(n.GID)); err != nil {
			return err
		}
	}
	if n.Type != TypeSymlink {
		if err := os.Chmod(p, fs.FileMode(n.Mode&0o777)|modeBits(n.Mode)); err != nil {
			return err
		}
	}
	ts := []unix.Timespec{unix.NsecToTimespec(n.ATime.UnixNano()), unix.NsecToTimespec(n.MTime.UnixNano())}
	if n.ATime.IsZero() {
		ts[0] = ts[1]
	}
	return unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW)
}

func modeBits(m uint32) fs.FileMode {
	var fm fs.FileMode
	if m&0o4000 != 0 {
		fm |= fs.ModeSetuid
	}
	if m&0o2000 != 0 {
		fm |= fs.ModeSetgid
	}
	if m&0o1000 != 0 {
		fm |= fs.ModeSticky
	}
	return fm
}
