package snapshot

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"math/bits"
	"path"
	"sort"
	"strings"

	"snap/chunk"
	"snap/index"
	"snap/repo"
)

// Paths inside a snapshot are slash-separated and start at the root tree,
// which holds one node per backed-up path, named by its last element: a
// backup of /home/me holds /me, /me/doc.txt and so on.

// WalkFunc is called by Walk for every node, with the node's path inside the
// snapshot. It may keep node (each directory is decoded into a fresh slice)
// but must not change it. Returning ErrSkipDir for a directory skips its
// contents; returning it for any other node skips the rest of the directory
// holding that node. Returning ErrSkipAll ends the walk without an error. Any
// other error ends the walk and is returned by Walk.
type WalkFunc func(path string, node *Node) error

// ErrSkipDir is returned by a WalkFunc to skip a directory; see WalkFunc. It
// is fs.SkipDir, so either may be used.
var ErrSkipDir = fs.SkipDir

// ErrSkipAll is returned by a WalkFunc to end a walk early; see WalkFunc. It
// is fs.SkipAll, so either may be used.
var ErrSkipAll = fs.SkipAll

// ErrPathNotFound is wrapped by FindNode's errors for a path that is not in
// the snapshot.
var ErrPathNotFound = errors.New("not in the snapshot")

// Walk calls fn for every node below the tree blob tree, depth first, each
// directory's nodes in name order, a directory before its contents. Paths are
// prefix, "/" and the node's name, so a prefix of "" or "/" gives absolute
// paths for a root tree, and the path of a directory gives the paths of its
// contents.
//
// Each directory's subtrees are looked up in the index in one transaction,
// the first time fn lets the walk descend into one of them.
func Walk(ctx context.Context, r *repo.Repository, tree chunk.ID, prefix string, fn WalkFunc) error {
	dir := strings.TrimSuffix(prefix, "/")
	nodes, err := LoadTree(ctx, r, tree)
	if err != nil {
		return fmt.Errorf("walk %s: %w", displayDir(dir), err)
	}
	err = walkNodes(ctx, r, nodes, dir, fn)
	if errors.Is(err, ErrSkipAll) {
		return nil
	}
	return err
}

func walkNodes(ctx context.Context, r *repo.Repository, nodes []Node, dir string, fn WalkFunc) error {
	var locs map[chunk.ID]index.Location
	for i := range nodes {
		if err := ctx.Err(); err != nil {
			return err
		}
		n := &nodes[i]
		p := dir + "/" + n.Name
		if err := fn(p, n); err != nil {
			if !errors.Is(err, ErrSkipDir) {
				return err
			}
			if n.Type != TypeDir {
				return nil // the rest of this directory
			}
			continue
		}
		if n.Type != TypeDir {
			continue
		}
		if locs == nil {
			var err error
			if locs, err = lookupBlobs(r, subtrees(nodes)); err != nil {
				return fmt.Errorf("walk %s: %w", displayDir(dir), err)
			}
		}
		sub, err := loadTreeFrom(ctx, r, locs, n.Subtree)
		if err != nil {
			return fmt.Errorf("walk %s: %w", p, err)
		}
		if err := walkNodes(ctx, r, sub, p, fn); err != nil {
			return err
		}
	}
	return nil
}

// displayDir names a directory path in messages, where the root is "" inside
// the code but "/" to the reader.
func displayDir(dir string) string {
	if dir == "" {
		return "/"
	}
	return dir
}

// subtrees returns the tree IDs of the directories among nodes.
func subtrees(nodes []Node) []chunk.ID {
	var ids []chunk.ID
	for i := range nodes {
		if nodes[i].Type == TypeDir {
			ids = append(ids, nodes[i].Subtree)
		}
	}
	return ids
}

// lookupBlobs finds the locations of ids in one index transaction: a call of
// index.Lookup opens the index file each time, which is what dominates the
// cost of walking a tree of many small directories. Blobs that are not
// indexed are left out of the map.
func lookupBlobs(r *repo.Repository, ids []chunk.ID) (map[chunk.ID]index.Location, error) {
	locs := make(map[chunk.ID]index.Location, len(ids))
	if len(ids) == 0 {
		return locs, nil
	}
	err := r.Index().LookupMany(ids, func(i int, loc index.Location, found bool) error {
		if found {
			locs[ids[i]] = loc
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("look up %d blobs in the index: %w", len(ids), err)
	}
	return locs, nil
}

// loadTreeFrom loads and decodes the tree id, taking its location from locs
// (nil: look it up now).
func loadTreeFrom(ctx context.Context, r *repo.Repository, locs map[chunk.ID]index.Location, id chunk.ID) ([]Node, error) {
	if locs == nil {
		return LoadTree(ctx, r, id)
	}
	loc, ok := locs[id]
	if !ok {
		return nil, fmt.Errorf("tree %s: %w", id.Short(), repo.ErrBlobMissing)
	}
	data, err := r.LoadBlobAt(ctx, loc)
	if err != nil {
		return nil, err
	}
	nodes, _, err := decodeTreeBlob(ctx, r, id, data)
	return nodes, err
}

// FindNode returns the node at slash path p inside the snapshot whose root
// tree is tree. A leading "/" is optional, and "." and ".." are resolved
// lexically. For the root itself ("", "/") it returns a directory node with
// an empty name whose Subtree is tree and which has no other metadata,
// because the root tree has no node of its own. A path that does not exist
// gives an error wrapping ErrPathNotFound that names the deepest directory
// that does.
func FindNode(ctx context.Context, r *repo.Repository, tree chunk.ID, p string) (*Node, error) {
	clean := path.Clean("/" + p)
	if clean == "/" {
		return &Node{Type: TypeDir, Subtree: tree}, nil
	}
	cur, walked := tree, ""
	for rest := clean[1:]; ; {
		name, more, _ := strings.Cut(rest, "/")
		nodes, err := LoadTree(ctx, r, cur)
		if err != nil {
			return nil, fmt.Errorf("look up %s: reading %s: %w", clean, displayDir(walked), err)
		}
		j := sort.Search(len(nodes), func(k int) bool { return nodes[k].Name >= name })
		if j == len(nodes) || nodes[j].Name != name {
			return nil, fmt.Errorf("%s: %w (%s has no entry %q)", clean, ErrPathNotFound, displayDir(walked), name)
		}
		n := &nodes[j]
		walked += "/" + name
		if more == "" {
			return n, nil
		}
		if n.Type != TypeDir {
			return nil, fmt.Errorf("%s: %w (%s is a %s, not a directory)", clean, ErrPathNotFound, walked, n.Type)
		}
		cur, rest = n.Subtree, more
	}
}

// maxPatternElems bounds the elements of a find pattern: the matcher keeps
// the progress of each pattern as a bit set in one uint64.
const maxPatternElems = 64

// Finder searches snapshots for nodes whose names or paths match glob
// patterns (path.Match syntax: *, ?, [...], \ escapes; a * never matches a
// "/"):
//
//   - a pattern without "/" is matched against a node's name;
//   - a pattern with "/" is matched against the last elements of the node's
//     path, element by element ("docs/*.txt" matches /me/docs/a.txt and
//     /me/old/docs/b.txt);
//   - a pattern starting with "/" must match the whole path
//     ("/me/*/a.txt" matches /me/docs/a.txt but not /me/x/docs/a.txt).
//
// Search one snapshot after another with the same Finder: unchanged
// directories keep their tree IDs from snapshot to snapshot, and the Finder
// remembers the matches found below each tree, so each distinct tree is
// loaded and searched once in all, however many snapshots share it. Strictly,
// it remembers them per tree and matching state (how much of each "/"
// pattern the path to the tree has matched so far), which for name patterns
// is always the same, and for "/" patterns is the same wherever a tree sits
// at the same path. Anchored patterns also keep the search out of
// directories whose path can no longer match, so finding "/me/doc.txt" loads
// two trees per distinct root instead of the whole snapshot.
//
// A Finder is not safe for concurrent use.
type Finder struct {
	r      *repo.Repository
	pats   []findPattern
	fold   bool
	memo   map[string]*findResult
	loaded int
}

type findPattern struct {
	elems    []string
	anchored bool
}

// findResult is what one tree (searched in one matching state) holds:
// nodes that match and subdirectories with matches below them, in name
// order. A nil *findResult means no match. Subresults are shared, not
// copied, so the memory used grows with the number of matches, not with the
// number of matches times their depth.
type findResult struct {
	entries []findEntry
}

type findEntry struct {
	name string
	hit  *Node       // the node itself matches
	sub  *findResult // matches below the node (a directory)
}

// NewFinder returns a Finder for patterns; see Finder for their syntax.
// With ignoreCase, names are compared after strings.ToLower of both.
func NewFinder(r *repo.Repository, patterns []string, ignoreCase bool) (*Finder, error) {
	if len(patterns) == 0 {
		return nil, errors.New("find: no pattern given")
	}
	f := &Finder{r: r, fold: ignoreCase, memo: make(map[string]*findResult)}
	for _, raw := range patterns {
		p := raw
		if ignoreCase {
			p = strings.ToLower(p)
		}
		fp := findPattern{anchored: strings.HasPrefix(p, "/")}
		for _, e := range strings.Split(p, "/") {
			if e == "" {
				continue // leading, trailing or doubled slashes
			}
			if _, err := path.Match(e, ""); err != nil {
				return nil, fmt.Errorf("find: pattern %q: element %q: %w; escape literal *, ?, [ and \\ with \\", raw, e, err)
			}
			fp.elems = append(fp.elems, e)
		}
		if len(fp.elems) == 0 {
			return nil, fmt.Errorf("find: pattern %q names no file; give a name such as '*.txt' or a path such as '/me/docs/*.txt'", raw)
		}
		if len(fp.elems) > maxPatternElems {
			return nil, fmt.Errorf("find: pattern %q has %d elements, more than the limit of %d", raw, len(fp.elems), maxPatternElems)
		}
		f.pats = append(f.pats, fp)
	}
	return f, nil
}

// TreesLoaded returns how many tree blobs the Finder has loaded so far.
func (f *Finder) TreesLoaded() int { return f.loaded }

// Search calls fn, in the order Walk would, for every node below the root
// tree tree that matches one of the patterns. The node passed to fn is shared
// by every snapshot the Finder finds it in and must not be changed; its
// Content and Xattrs are nil, so that the remembered matches stay small.
func (f *Finder) Search(ctx context.Context, tree chunk.ID, fn WalkFunc) error {
	state := make([]uint64, len(f.pats))
	for i := range state {
		state[i] = 1 // nothing matched yet: every pattern waits for its first element
	}
	res, err := f.search(ctx, tree, state, "", nil)
	if err != nil {
		return err
	}
	err = emit(res, "", fn)
	if errors.Is(err, ErrSkipAll) {
		return nil
	}
	return err
}

func emit(res *findResult, dir string, fn WalkFunc) error {
	if res == nil {
		return nil
	}
	for _, e := range res.entries {
		p := dir + "/" + e.name
		if e.hit != nil {
			if err := fn(p, e.hit); err != nil {
				if errors.Is(err, ErrSkipDir) {
					continue
				}
				return err
			}
		}
		if err := emit(e.sub, p, fn); err != nil {
			return err
		}
	}
	return nil
}

// memoKey identifies a tree searched in a matching state.
func memoKey(tree chunk.ID, state []uint64) string {
	b := make([]byte, 0, len(tree)+8*len(state))
	b = append(b, tree[:]...)
	for _, s := range state {
		b = binary.LittleEndian.AppendUint64(b, s)
	}
	return string(b)
}

// step matches name against the patterns in state, the state of the
// directory holding it: bit j of state[i] says that the path so far ends
// with the first j elements of pattern i. It reports whether the node
// matches a pattern and, if next is wanted (a directory), the state of the
// node's own contents; alive says whether any pattern can still match below.
func (f *Finder) step(state []uint64, name string, wantNext bool) (hit bool, next []uint64, alive bool) {
	if f.fold {
		name = strings.ToLower(name)
	}
	if wantNext {
		next = make([]uint64, len(f.pats))
	}
	for i, p := range f.pats {
		var nm uint64
		for m := state[i]; m != 0; m &= m - 1 {
			j := bits.TrailingZeros64(m)
			if ok, _ := path.Match(p.elems[j], name); !ok {
				continue
			}
			if j+1 == len(p.elems) {
				hit = true
			} else {
				nm |= 1 << (j + 1)
			}
		}
		if !p.anchored {
			nm |= 1 // an unanchored pattern may start at any element
		}
		if wantNext {
			next[i] = nm
			alive = alive || nm != 0
		}
	}
	return hit, next, alive
}

// search returns the matches below tree, the directory at dir, searched in
// state, from the memo or by loading the tree (its location from locs, if
// not nil).
func (f *Finder) search(ctx context.Context, tree chunk.ID, state []uint64, dir string, locs map[chunk.ID]index.Location) (*findResult, error) {
	key := memoKey(tree, state)
	if res, ok := f.memo[key]; ok {
		return res, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	nodes, err := loadTreeFrom(ctx, f.r, locs, tree)
	if err != nil {
		return nil, fmt.Errorf("find: reading %s: %w", displayDir(dir), err)
	}
	f.loaded++

	// First decide what matches and which subtrees must be searched, so
	// that those not searched before are looked up in one transaction.
	type todo struct {
		hit  bool
		next []uint64 // nil: do not descend
	}
	todos := make([]todo, len(nodes))
	var unknown []chunk.ID
	for i := range nodes {
		n := &nodes[i]
		hit, next, alive := f.step(state, n.Name, n.Type == TypeDir)
		todos[i].hit = hit
		if n.Type == TypeDir && alive {
			todos[i].next = next
			if _, ok := f.memo[memoKey(n.Subtree, next)]; !ok {
				unknown = append(unknown, n.Subtree)
			}
		}
	}
	subLocs, err := lookupBlobs(f.r, unknown)
	if err != nil {
		return nil, fmt.Errorf("find: reading %s: %w", displayDir(dir), err)
	}

	res := &findResult{}
	for i := range nodes {
		n, t := &nodes[i], todos[i]
		e := findEntry{name: n.Name}
		if t.hit {
			c := *n
			c.Content, c.Xattrs = nil, nil
			e.hit = &c
		}
		if t.next != nil {
			if e.sub, err = f.search(ctx, n.Subtree, t.next, dir+"/"+n.Name, subLocs); err != nil {
				return nil, err
			}
		}
		if e.hit != nil || e.sub != nil {
			res.entries = append(res.entries, e)
		}
	}
	if len(res.entries) == 0 {
		res = nil
	}
	f.memo[key] = res
	return res, nil
}
