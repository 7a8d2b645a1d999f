package snapshot

import (
	"bytes"
	"context"
	"errors"
	"io"
	"slices"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"snap/chunk"
	"snap/internal/fsdir"
	"snap/repo"
)

// Change kinds, as printed by 'snap diff'.
const (
	Added    = '+'
	Removed  = '-'
	Modified = 'M' // content (or symlink target, device number) differs
	TypeChg  = 'T' // the entry changed type
	MetaOnly = 'U' // mode, owner, xattrs or mtime differ; content is the same
)

// Change is one difference between two trees.
type Change struct {
	Kind     byte
	Path     string
	Old, New *Node // nil for added / removed
}

// Differ compares trees. Subtrees with equal IDs are skipped without being
// read, so comparing two snapshots that differ in one file reads only the
// trees on that file's path.
type Differ struct {
	r *repo.Repository
	// TreesLoaded counts trees read, for tests and --stat.
	TreesLoaded atomic.Int64
	// Content makes a comparison with a live tree reread files whose
	// metadata changed and compare their chunks, telling a touched file (U)
	// from a modified one (M).
	Content bool
}

// NewDiffer returns a Differ for r.
func NewDiffer(r *repo.Repository) *Differ { return &Differ{r: r} }

func (d *Differ) load(ctx context.Context, id chunk.ID) ([]Node, error) {
	d.TreesLoaded.Add(1)
	return LoadTree(ctx, d.r, id)
}

// Trees reports every change from tree a to tree b below path prefix.
func (d *Differ) Trees(ctx context.Context, a, b chunk.ID, prefix string, fn func(Change) error) error {
	if a == b {
		return nil
	}
	an, err := d.load(ctx, a)
	if err != nil {
		return err
	}
	bn, err := d.load(ctx, b)
	if err != nil {
		return err
	}
	return d.nodes(ctx, an, bn, prefix, fn)
}

// nodes merges two sorted node lists.
func (d *Differ) nodes(ctx context.Context, an, bn []Node, prefix string, fn func(Change) error) error {
	i, j := 0, 0
	for i < len(an) || j < len(bn) {
		if err := ctx.Err(); err != nil {
			return err
		}
		switch {
		case j >= len(bn) || i < len(an) && an[i].Name < bn[j].Name:
			if err := d.whole(ctx, Removed, &an[i], prefix+"/"+an[i].Name, fn); err != nil {
				return err
			}
			i++
		case i >= len(an) || bn[j].Name < an[i].Name:
			if err := d.whole(ctx, Added, &bn[j], prefix+"/"+bn[j].Name, fn); err != nil {
				return err
			}
			j++
		default:
			if err := d.pair(ctx, &an[i], &bn[j], prefix+"/"+an[i].Name, fn); err != nil {
				return err
			}
			i++
			j++
		}
	}
	return nil
}

// whole reports an added or removed entry and everything below it.
func (d *Differ) whole(ctx context.Context, kind byte, n *Node, p string, fn func(Change) error) error {
	c := Change{Kind: kind, Path: p}
	if kind == Added {
		c.New = n
	} else {
		c.Old = n
	}
	if err := fn(c); err != nil {
		return err
	}
	if n.Type != TypeDir {
		return nil
	}
	children, err := d.load(ctx, n.Subtree)
	if err != nil {
		return err
	}
	for i := range children {
		if err := d.whole(ctx, kind, &children[i], p+"/"+children[i].Name, fn); err != nil {
			return err
		}
	}
	return nil
}

func (d *Differ) pair(ctx context.Context, a, b *Node, p string, fn func(Change) error) error {
	if a.Type != b.Type {
		if err := fn(Change{TypeChg, p, a, b}); err != nil {
			return err
		}
		if a.Type == TypeDir {
			return d.whole(ctx, Removed, &Node{Type: TypeDir, Subtree: a.Subtree}, p, skipSelf(fn))
		}
		if b.Type == TypeDir {
			return d.whole(ctx, Added, &Node{Type: TypeDir, Subtree: b.Subtree}, p, skipSelf(fn))
		}
		return nil
	}
	switch {
	case !sameContent(a, b):
		if err := fn(Change{Modified, p, a, b}); err != nil {
			return err
		}
	case !sameMeta(a, b):
		if err := fn(Change{MetaOnly, p, a, b}); err != nil {
			return err
		}
	}
	if a.Type == TypeDir && a.Subtree != b.Subtree {
		return d.Trees(ctx, a.Subtree, b.Subtree, p, fn)
	}
	return nil
}

// skipSelf drops the first change, which repeats the type change already reported.
func skipSelf(fn func(Change) error) func(Change) error {
	first := true
	return func(c Change) error {
		if first {
			first = false
			return nil
		}
		return fn(c)
	}
}

func sameContent(a, b *Node) bool {
	switch a.Type {
	case TypeFile:
		return a.Size == b.Size && slices.Equal(a.Content, b.Content)
	case TypeSymlink:
		return a.LinkTarget == b.LinkTarget
	case TypeCharDev, TypeBlockDev:
		return a.Rdev == b.Rdev
	}
	return true // directories: their entries are compared one by one
}

// sameMeta compares what a user would call metadata: not atime, ctime,
// inode or device, which change without anything a person did to the file.
func sameMeta(a, b *Node) bool {
	if a.Mode != b.Mode || a.UID != b.UID || a.GID != b.GID || len(a.Xattrs) != len(b.Xattrs) {
		return false
	}
	if a.Type != TypeDir && !a.MTime.Equal(b.MTime) {
		return false
	}
	for i := range a.Xattrs {
		if a.Xattrs[i].Name != b.Xattrs[i].Name || !bytes.Equal(a.Xattrs[i].Value, b.Xattrs[i].Value) {
			return false
		}
	}
	return true
}

// Live compares the snapshot tree tree (whose node for the live directory
// is named by its last element) with the directory dir on disk: what would
// the next backup store? Files count as modified when size or mtime
// differ, or, with Content, when rereading gives other chunks.
func (d *Differ) Live(ctx context.Context, tree chunk.ID, dir, prefix string, fn func(Change) error) error {
	nodes, err := d.load(ctx, tree)
	if err != nil {
		return err
	}
	h, err := fsdir.Open(dir)
	if err != nil {
		return err
	}
	defer h.Close()
	return d.live(ctx, nodes, h, prefix, fn)
}

func (d *Differ) live(ctx context.Context, snapNodes []Node, h *fsdir.Dir, prefix string, fn func(Change) error) error {
	names, err := h.Names()
	if err != nil {
		return err
	}
	ids := newIDNames()
	disk := make([]Node, 0, len(names))
	for _, name := range names {
		st, err := h.Lstat(name)
		if err != nil {
			if errors.Is(err, unix.ENOENT) {
				continue
			}
			return err
		}
		n := nodeFromStat(name, &st, ids)
		if n.Type == TypeSocket {
			continue
		}
		if xs, err := h.Xattrs(name); err == nil {
			for _, x := range xs {
				n.Xattrs = append(n.Xattrs, Xattr{x.Name, x.Value})
			}
		}
		if n.Type == TypeSymlink {
			n.LinkTarget, _ = h.Readlink(name)
		}
		disk = append(disk, n)
	}
	i, j := 0, 0
	for i < len(snapNodes) || j < len(disk) {
		if err := ctx.Err(); err != nil {
			return err
		}
		switch {
		case j >= len(disk) || i < len(snapNodes) && snapNodes[i].Name < disk[j].Name:
			if err := d.whole(ctx, Removed, &snapNodes[i], prefix+"/"+snapNodes[i].Name, fn); err != nil {
				return err
			}
			i++
		case i >= len(snapNodes) || disk[j].Name < snapNodes[i].Name:
			if err := d.liveAdded(ctx, h, &disk[j], prefix+"/"+disk[j].Name, fn); err != nil {
				return err
			}
			j++
		default:
			a, b := &snapNodes[i], &disk[j]
			p := prefix + "/" + a.Name
			i++
			j++
			if a.Type != b.Type {
				if err := fn(Change{TypeChg, p, a, b}); err != nil {
					return err
				}
				continue
			}
			switch a.Type {
			case TypeFile:
				// The same test create uses to decide whether to read a file.
				changed := a.Size != b.Size || !a.MTime.Equal(b.MTime) || !a.CTime.Equal(b.CTime) || a.Inode != b.Inode
				if changed && d.Content && a.Size == b.Size {
					if same, err := d.sameChunks(ctx, h, b.Name, a.Content); err == nil && same {
						changed = false
					}
				}
				var err error
				switch {
				case changed:
					err = fn(Change{Modified, p, a, b})
				case !sameMeta(a, b):
					err = fn(Change{MetaOnly, p, a, b})
				}
				if err != nil {
					return err
				}
			case TypeDir:
				if !sameMeta(a, b) {
					if err := fn(Change{MetaOnly, p, a, b}); err != nil {
						return err
					}
				}
				children, err := d.load(ctx, a.Subtree)
				if err != nil {
					return err
				}
				sub, err := h.OpenDir(b.Name)
				if err != nil {
					return err
				}
				err = d.live(ctx, children, sub, p, fn)
				sub.Close()
				if err != nil {
					return err
				}
			default:
				if !sameContent(a, b) {
					if err := fn(Change{Modified, p, a, b}); err != nil {
						return err
					}
				} else if !sameMeta(a, b) {
					if err := fn(Change{MetaOnly, p, a, b}); err != nil {
						return err
					}
				}
			}
		}
	}
	return nil
}

// liveAdded reports an entry on disk that the snapshot lacks, with its contents.
func (d *Differ) liveAdded(ctx context.Context, h *fsdir.Dir, n *Node, p string, fn func(Change) error) error {
	if err := fn(Change{Kind: Added, Path: p, New: n}); err != nil {
		return err
	}
	if n.Type != TypeDir {
		return nil
	}
	sub, err := h.OpenDir(n.Name)
	if err != nil {
		return err
	}
	defer sub.Close()
	return d.live(ctx, nil, sub, p, fn)
}

// sameChunks rereads a file and compares its chunk IDs with content.
func (d *Differ) sameChunks(ctx context.Context, h *fsdir.Dir, name string, content []chunk.ID) (bool, error) {
	f, err := h.OpenFile(name)
	if err != nil {
		return false, err
	}
	defer f.Close()
	params := d.r.Config().Chunker
	ch := chunk.NewChunker(params)
	ch.Reset(f)
	buf := make([]byte, 0, params.MaxSize)
	k := 0
	for {
		if err := ctx.Err(); err != nil {
			return false, err
		}
		data, err := ch.Next(buf)
		if errors.Is(err, io.EOF) {
			return k == len(content), nil
		}
		if err != nil {
			return false, err
		}
		if k >= len(content) || chunk.Hash(data) != content[k] {
			return false, nil
		}
		k++
	}
}

// Repo returns the repository the Differ reads.
func (d *Differ) Repo() *repo.Repository { return d.r }
