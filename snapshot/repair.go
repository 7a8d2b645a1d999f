package snapshot

import (
	"context"
	"fmt"

	"snap/chunk"
	"snap/index"
	"snap/repo"
)

// DamagedXattr marks a file whose content was lost and replaced by nothing.
const DamagedXattr = "user.snap.damaged"

// Repairer rewrites trees so that they reference only blobs the repository
// has: files with missing data become empty files marked with DamagedXattr,
// directories whose tree is missing become empty. Trees are memoized, so a
// directory shared by many snapshots is repaired once.
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
	nodes, err := LoadTree(ctx, rp.r, id)
	if err != nil {
		empty, err := rp.save(ctx, nil)
		if err != nil {
			return repaired{}, err
		}
		res := repaired{empty, []string{""}}
		rp.memo[id] = res
		return res, nil
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
	changed := false
	var lost []string
	for i := range nodes {
		n := &nodes[i]
		switch n.Type {
		case TypeFile:
			for _, c := range n.Content {
				if missing[c] {
					n.Xattrs = append(n.Xattrs, Xattr{Name: DamagedXattr,
						Value: []byte(fmt.Sprintf("content lost (%d bytes); replaced by an empty file by 'snap repair snapshots'", n.Size))})
					n.Content, n.Size, n.Holes = nil, 0, nil
					n.Lists, n.ListDepth = nil, 0
					lost = append(lost, "/"+n.Name)
					changed = true
					break
				}
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

func (rp *Repairer) save(ctx context.Context, nodes []Node) (chunk.ID, error) {
	return saveTree(ctx, rp.r, nodes, nil)
}
