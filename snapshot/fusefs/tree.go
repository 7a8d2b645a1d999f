package fusefs

import (
	"context"
	"sort"
	"sync"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"snap/chunk"
	"snap/index"
	"snap/repo/pack"
	"snap/snapshot"
)

// entryNode is any entry inside a snapshot: it shows the node's recorded
// metadata and extended attributes. Files, directories and symlinks embed
// it and add their content; devices, fifos and sockets are just this.
type entryNode struct {
	fs.Inode
	fsys *FS
	node snapshot.Node
	id   ident
}

var (
	_ fs.NodeGetattrer   = (*entryNode)(nil)
	_ fs.NodeGetxattrer  = (*entryNode)(nil)
	_ fs.NodeListxattrer = (*entryNode)(nil)
)

func (e *entryNode) fillAttr(out *fuse.Attr) {
	fillAttr(&e.node, e.id.stable(typeBits(e.node.Type)).Ino, out)
}

// Getattr reports the recorded metadata.
func (e *entryNode) Getattr(ctx context.Context, _ fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	e.fillAttr(&out.Attr)
	out.SetTimeout(snapshotTimeout)
	return 0
}

// Getxattr returns a recorded extended attribute.
func (e *entryNode) Getxattr(ctx context.Context, attr string, dest []byte) (uint32, syscall.Errno) {
	for _, x := range e.node.Xattrs {
		if x.Name != attr {
			continue
		}
		if len(dest) < len(x.Value) {
			return uint32(len(x.Value)), syscall.ERANGE
		}
		return uint32(copy(dest, x.Value)), 0
	}
	return 0, fs.ENOATTR
}

// Listxattr lists the recorded extended attributes' names, each ended by NUL.
func (e *entryNode) Listxattr(ctx context.Context, dest []byte) (uint32, syscall.Errno) {
	size := 0
	for _, x := range e.node.Xattrs {
		size += len(x.Name) + 1
	}
	if len(dest) < size {
		return uint32(size), syscall.ERANGE
	}
	n := 0
	for _, x := range e.node.Xattrs {
		n += copy(dest[n:], x.Name)
		dest[n] = 0
		n++
	}
	return uint32(n), 0
}

// path is the node's path in the mount, for messages.
func (e *entryNode) path() string {
	return "/" + e.Path(nil)
}

// symlinkNode is a symlink inside a snapshot.
type symlinkNode struct{ entryNode }

var _ fs.NodeReadlinker = (*symlinkNode)(nil)

// Readlink returns the recorded target.
func (s *symlinkNode) Readlink(ctx context.Context) ([]byte, syscall.Errno) {
	return []byte(s.node.LinkTarget), 0
}

// treeDir is a directory inside a snapshot, or a snapshot's root directory.
// Its tree blob is loaded at the first lookup or listing and kept for as long
// as the kernel keeps the directory.
type treeDir struct {
	entryNode
	tree   chunk.ID
	loc    index.Location // of the tree blob, if hasLoc
	hasLoc bool
	scope  ident // ident of the snapshot's root directory: the scope of hard-link groups

	mu     sync.Mutex
	loaded bool
	nodes  []snapshot.Node
	locs   map[chunk.ID]index.Location // of the subtrees among nodes
}

var (
	_ fs.NodeLookuper  = (*treeDir)(nil)
	_ fs.NodeReaddirer = (*treeDir)(nil)
)

// newSnapshotDir returns the root directory of sn. The root tree has no node
// of its own, so it shows as a read-only directory owned by the user who
// made the snapshot, dated by the snapshot.
func newSnapshotDir(f *FS, sn *snapshot.Snapshot, id ident) *treeDir {
	n := snapshot.Node{Type: snapshot.TypeDir, Mode: 0o555, UID: sn.UID, GID: sn.GID,
		MTime: sn.Time, CTime: sn.Time, Links: 2, Subtree: sn.Tree}
	return &treeDir{entryNode: entryNode{fsys: f, node: n, id: id}, tree: sn.Tree, scope: id}
}

// load returns the directory's nodes, loading the tree blob the first time,
// and with it the locations of all its subtrees in one index transaction.
// The load runs under the file system's context, not the request's: a
// signal to the reader must not leave a half-loaded directory.
func (d *treeDir) load() ([]snapshot.Node, syscall.Errno) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.loaded {
		return d.nodes, 0
	}
	ctx := d.fsys.ctx
	data, loc, err := d.fsys.loadBlob(ctx, pack.TreeBlob, d.tree, d.loc, d.hasLoc)
	if err != nil {
		d.fsys.opts.Logf("read directory %s: %v", d.path(), err)
		return nil, errno(err)
	}
	d.loc, d.hasLoc = loc, true
	// Reads the pages of a paged tree and the content lists of large files.
	nodes, err := snapshot.DecodeTreeBlob(ctx, d.fsys.r, d.tree, data)
	if err != nil {
		d.fsys.opts.Logf("read directory %s: %v; run 'snap check'", d.path(), err)
		return nil, errno(err)
	}
	var subs []chunk.ID
	for i := range nodes {
		if nodes[i].Type == snapshot.TypeDir {
			subs = append(subs, nodes[i].Subtree)
		}
	}
	locs := make(map[chunk.ID]index.Location, len(subs))
	err = d.fsys.r.Index().LookupMany(subs, func(i int, loc index.Location, found bool) error {
		if found {
			locs[subs[i]] = loc
		}
		return nil
	})
	if err != nil {
		// Each subdirectory looks its tree up on its own then.
		d.fsys.opts.Logf("read directory %s: look up %d subdirectories in the index: %v", d.path(), len(subs), err)
	}
	d.nodes, d.locs, d.loaded = nodes, locs, true
	return nodes, 0
}

// childIdent returns the ident of the entry n: by path, except for files
// that were hard links to each other (see hardLinkIdent).
func (d *treeDir) childIdent(n *snapshot.Node) ident {
	if n.Type != snapshot.TypeDir && n.Links > 1 {
		if id, ok := hardLinkIdent(d.scope, n); ok {
			return id
		}
	}
	return d.id.child(n.Name, nil)
}

// Readdir lists the recorded entries.
func (d *treeDir) Readdir(ctx context.Context) (fs.DirStream, syscall.Errno) {
	nodes, eno := d.load()
	if eno != 0 {
		return nil, eno
	}
	list := dotEntries(&d.Inode, len(nodes))
	for i := range nodes {
		mode := typeBits(nodes[i].Type)
		list = append(list, fuse.DirEntry{Name: nodes[i].Name, Mode: mode, Ino: d.childIdent(&nodes[i]).stable(mode).Ino})
	}
	return fs.NewListDirStream(list), 0
}

// Lookup finds a recorded entry by name (nodes are sorted by name).
func (d *treeDir) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	nodes, eno := d.load()
	if eno != 0 {
		return nil, eno
	}
	j := sort.Search(len(nodes), func(k int) bool { return nodes[k].Name >= name })
	if j == len(nodes) || nodes[j].Name != name {
		return nil, syscall.ENOENT
	}
	n := nodes[j]
	id := d.childIdent(&n)
	mode := typeBits(n.Type)
	var ops fs.InodeEmbedder
	switch n.Type {
	case snapshot.TypeDir:
		d.mu.Lock()
		loc, ok := d.locs[n.Subtree]
		d.mu.Unlock()
		ops = &treeDir{entryNode: entryNode{fsys: d.fsys, node: n, id: id},
			tree: n.Subtree, loc: loc, hasLoc: ok, scope: d.scope}
	case snapshot.TypeFile:
		ops = &fileNode{entryNode: entryNode{fsys: d.fsys, node: n, id: id}}
	case snapshot.TypeSymlink:
		ops = &symlinkNode{entryNode: entryNode{fsys: d.fsys, node: n, id: id}}
	default:
		ops = &entryNode{fsys: d.fsys, node: n, id: id}
	}
	fillAttr(&n, id.stable(mode).Ino, &out.Attr)
	out.SetEntryTimeout(snapshotTimeout)
	out.SetAttrTimeout(snapshotTimeout)
	return d.NewInode(ctx, ops, id.stable(mode)), 0
}
