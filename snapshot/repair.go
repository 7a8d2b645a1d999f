package snapshot

import (
	"context"
	"errors"
	"fmt"
	"io/fs"

	"snap/chunk"
	"snap/index"
	"snap/repo"
	"snap/repo/pack"
)

// DamagedXattr marks a file whose content was lost and replaced by nothing.
const DamagedXattr = "user.snap.damaged"

// Repairer rewrites trees so that they reference only blobs the repository
// has: files with missing data become empty files marked with DamagedXattr,
// directories whose tree is missing become empty, and a large directory that
// lost one of its pages keeps the entries of the others. Only blobs that are
// missing or damaged count as lost: any other error (a read that failed, a
// connection lost, a cancelled run) stops the repair, which must never drop
// what it merely could not read. Trees are memoized, so a directory shared
// by many snapshots is repaired once.
type Repairer struct {
	r    *repo.Repository
	memo map[chunk.ID]repaired
}

type repaired struct {
	id   chunk.ID
	lost []string // relative paths
}

// NewRepairer returns a Repairer for r. The caller holds the write lock.
func NewRepairer(r *repo.Repository) *Repairer {
	return &Repairer{r: r, memo: map[chunk.ID]repaired{}}
}

// Repair returns the repaired copy of sn (not yet saved; nil if nothing in
// it is damaged) and the paths that lost data.
func (rp *Repairer) Repair(ctx context.Context, sn *Snapshot) (*Snapshot, error) {
	res, err := rp.tree(ctx, sn.Tree)
	if err != nil {
		return nil, err
	}
	if res.id == sn.Tree {
		return nil, nil
	}
	out := *sn
	out.Tree = res.id
	orig := sn.ID
	out.Original = &orig
	out.Lost = res.lost
	out.ID = chunk.ID{}
	out.IndexGeneration = "" // the next backup checks its blobs again
	if !contains(out.Tags, "repaired") {
		out.Tags = append(append([]string(nil), out.Tags...), "repaired")
	}
	return &out, nil
}

func (rp *Repairer) tree(ctx context.Context, id chunk.ID) (repaired, error) {
	if res, ok := rp.memo[id]; ok {
		return res, nil
	}
	if err := ctx.Err(); err != nil {
		return repaired{}, err
	}
	nodes, partly, listsLost, err := rp.load(ctx, id)
	if errors.Is(err, errTreeLost) {
		empty, err := rp.save(ctx, nil)
		if err != nil {
			return repaired{}, err
		}
		res := repaired{empty, []string{""}}
		rp.memo[id] = res
		return res, nil
	}
	if err != nil {
		return repaired{}, fmt.Errorf("repair tree %s: %w (not a missing or damaged blob, so nothing is dropped for it: run the repair again once the repository can be read)", id.Short(), err)
	}
	var ids []chunk.ID
	for i := range nodes {
		ids = append(ids, nodes[i].Content...)
	}
	missing := map[chunk.ID]bool{}
	if len(ids) > 0 {
		err := rp.r.Index().LookupMany(ids, func(i int, _ index.Location, found bool) error {
			if !found {
				missing[ids[i]] = true
			}
			return nil
		})
		if err != nil {
			return repaired{}, err
		}
	}
	changed := partly
	var lost []string
	if partly {
		lost = append(lost, "") // entries of this directory, on a lost page
	}
	for i := range nodes {
		n := &nodes[i]
		switch n.Type {
		case TypeFile:
			gone := listsLost[i]
			for _, c := range n.Content {
				gone = gone || missing[c]
			}
			if gone {
				n.Xattrs = append(n.Xattrs, Xattr{Name: DamagedXattr,
					Value: []byte(fmt.Sprintf("content lost (%d bytes); replaced by an empty file by 'snap repair snapshots'", n.Size))})
				n.Content, n.Size, n.Holes = nil, 0, nil
				n.Lists, n.ListDepth, n.ListBlobs = nil, 0, nil
				lost = append(lost, "/"+n.Name)
				changed = true
			}
		case TypeDir:
			sub, err := rp.tree(ctx, n.Subtree)
			if err != nil {
				return repaired{}, err
			}
			if sub.id != n.Subtree {
				n.Subtree = sub.id
				changed = true
				for _, l := range sub.lost {
					lost = append(lost, "/"+n.Name+l)
				}
			}
		}
	}
	res := repaired{id: id}
	if changed {
		newID, err := rp.save(ctx, nodes)
		if err != nil {
			return repaired{}, err
		}
		res = repaired{newID, lost}
	}
	rp.memo[id] = res
	return res, nil
}

// errTreeLost says that the top blob of a tree is missing or damaged.
var errTreeLost = errors.New("tree lost")

// load reads tree id for repair, leaving out what is missing or damaged:
// partly reports that pages of a large directory were left out, and
// listsLost the nodes whose content lists were. A missing or damaged top
// blob gives errTreeLost; any other failure is returned as it is.
func (rp *Repairer) load(ctx context.Context, id chunk.ID) (nodes []Node, partly bool, listsLost map[int]bool, err error) {
	data, err := rp.r.LoadBlob(ctx, pack.TreeBlob, id)
	if damaged(err) {
		return nil, false, nil, errTreeLost
	}
	if err != nil {
		return nil, false, nil, err
	}
	if len(data) > 0 && data[0] == treeIndexVersion {
		nodes, _, err = expandTreePages(ctx, rp.r, data, func(_ chunk.ID, err error) bool {
			if damaged(err) {
				partly = true
				return true
			}
			return false
		})
	} else {
		nodes, err = DecodeTree(data)
	}
	if damaged(err) {
		return nil, false, nil, errTreeLost
	}
	if err != nil {
		return nil, false, nil, err
	}
	listsLost = map[int]bool{}
	err = expandContentLists(ctx, rp.r, nodes, func(i int, err error) bool {
		listsLost[i] = damaged(err)
		return listsLost[i]
	})
	return nodes, partly, listsLost, err
}

// damaged reports whether err says that a blob is missing or its bytes are
// wrong, as opposed to a read that failed.
func damaged(err error) bool {
	return err != nil && (errors.Is(err, repo.ErrBlobMissing) || errors.Is(err, repo.ErrBlobCorrupt) ||
		errors.Is(err, pack.ErrCorrupt) || errors.Is(err, ErrBadTree) || errors.Is(err, fs.ErrNotExist))
}

func (rp *Repairer) save(ctx context.Context, nodes []Node) (chunk.ID, error) {
	return saveTree(ctx, rp.r, nodes, nil)
}
