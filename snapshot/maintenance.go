package snapshot

import (
	"context"
	"fmt"
	"slices"
	"sort"

	"snap/chunk"
	"snap/index"
	"snap/repo"
)

// UsedBlobs returns every blob (trees and data) the snapshots reference.
// Each distinct tree is read once. A tree that cannot be read is an error:
// pruning without knowing what it references could delete needed data.
func UsedBlobs(ctx context.Context, r *repo.Repository, snaps []*Snapshot) (repo.BlobSet, error) {
	used := repo.BlobSet{}
	var stack []chunk.ID
	for _, sn := range snaps {
		if used.Add(sn.Tree) {
			stack = append(stack, sn.Tree)
		}
	}
	for len(stack) > 0 {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		id := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		nodes, below, err := loadTree(ctx, r, id)
		if err != nil {
			return nil, fmt.Errorf("read tree %s: %w; run 'snap check'", id.Short(), err)
		}
		for _, b := range below {
			used.Add(b)
		}
		for i := range nodes {
			for _, c := range nodes[i].Content {
				used.Add(c)
			}
			for _, c := range nodes[i].ListBlobs {
				used.Add(c)
			}
			if !nodes[i].Subtree.IsNull() && used.Add(nodes[i].Subtree) {
				stack = append(stack, nodes[i].Subtree)
			}
		}
	}
	return used, nil
}

// LostFile is a file version that a prune would make unrecoverable.
type LostFile struct {
	Path      string   `json:"path"`
	Size      uint64   `json:"size"`
	Snapshots []string `json:"snapshots"` // short IDs of the snapshots that had it
}

// LostFiles lists the files of removed snapshots whose content will be gone
// once only the blobs in kept remain: the readable answer to "what does this
// --delete lose?". A directory whose tree is kept is skipped whole, since
// everything under it survives.
func LostFiles(ctx context.Context, r *repo.Repository, removed []*Snapshot, kept repo.BlobSet) ([]LostFile, error) {
	byPath := map[string]*LostFile{}
	for _, sn := range removed {
		if kept.Has(sn.Tree) {
			continue
		}
		err := Walk(ctx, r, sn.Tree, "", func(p string, n *Node) error {
			switch n.Type {
			case TypeDir:
				if kept.Has(n.Subtree) {
					return ErrSkipDir
				}
			case TypeFile:
				for _, id := range n.Content {
					if !kept.Has(id) {
						lf := byPath[p]
						if lf == nil {
							lf = &LostFile{Path: p}
							byPath[p] = lf
						}
						lf.Size = max(lf.Size, n.Size)
						lf.Snapshots = append(lf.Snapshots, sn.ID.Short())
						break
					}
				}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	out := make([]LostFile, 0, len(byPath))
	for _, lf := range byPath {
		out = append(out, *lf)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

// TreeProblem is damage found while checking snapshots' trees.
type TreeProblem struct {
	Snapshot *Snapshot
	Path     string // in the snapshot
	Err      error
}

// CheckTrees reads every tree of the snapshots and checks that every blob
// they reference is in the index. Each distinct tree is checked once; a
// problem in a shared tree is reported for the first snapshot that has it.
// It returns the set of blobs referenced.
func CheckTrees(ctx context.Context, r *repo.Repository, snaps []*Snapshot, report func(TreeProblem)) (repo.BlobSet, error) {
	used := repo.BlobSet{}
	for _, sn := range snaps {
		if err := checkTree(ctx, r, sn, sn.Tree, "", used, report); err != nil {
			return nil, err
		}
	}
	return used, nil
}

func checkTree(ctx context.Context, r *repo.Repository, sn *Snapshot, id chunk.ID, dir string, seen repo.BlobSet, report func(TreeProblem)) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if !seen.Add(id) {
		return nil
	}
	nodes, below, err := loadTree(ctx, r, id)
	if err != nil {
		report(TreeProblem{sn, displayDir(dir), err})
		return nil
	}
	for _, b := range below {
		seen.Add(b) // loaded by loadTree already, so present
	}
	var ids []chunk.ID
	var owners []string
	for i := range nodes {
		for _, c := range nodes[i].Content {
			if seen.Add(c) {
				ids = append(ids, c)
				owners = append(owners, dir+"/"+nodes[i].Name)
			}
		}
		for _, c := range nodes[i].ListBlobs {
			seen.Add(c) // loaded by LoadTree already, so present
		}
	}
	if len(ids) > 0 {
		err := r.Index().LookupMany(ids, func(i int, _ index.Location, found bool) error {
			if !found {
				report(TreeProblem{sn, owners[i], fmt.Errorf("data blob %s: %w", ids[i].Short(), repo.ErrBlobMissing)})
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	for i := range nodes {
		if nodes[i].Type == TypeDir {
			if err := checkTree(ctx, r, sn, nodes[i].Subtree, dir+"/"+nodes[i].Name, seen, report); err != nil {
				return err
			}
		}
	}
	return nil
}

// Affected is a file or directory that uses a damaged blob.
type Affected struct {
	Snapshot *Snapshot
	Path     string
	Blob     chunk.ID
}

// AffectedPaths lists, for every snapshot, the paths whose content or tree
// is one of the bad blobs. Results per tree are memoized, so shared
// directories are searched once.
func AffectedPaths(ctx context.Context, r *repo.Repository, snaps []*Snapshot, bad map[chunk.ID]bool) ([]Affected, error) {
	memo := map[chunk.ID][]relHit{}
	var out []Affected
	for _, sn := range snaps {
		hits, err := affected(ctx, r, sn.Tree, bad, memo)
		if err != nil {
			return nil, err
		}
		for _, h := range hits {
			out = append(out, Affected{sn, h.path, h.blob})
		}
	}
	return out, nil
}

type relHit struct {
	path string
	blob chunk.ID
}

func affected(ctx context.Context, r *repo.Repository, tree chunk.ID, bad map[chunk.ID]bool, memo map[chunk.ID][]relHit) ([]relHit, error) {
	if hits, ok := memo[tree]; ok {
		return hits, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var hits []relHit
	if bad[tree] {
		memo[tree] = []relHit{{"", tree}}
		return memo[tree], nil
	}
	nodes, err := LoadTree(ctx, r, tree)
	if err != nil {
		memo[tree] = []relHit{{"", tree}}
		return memo[tree], nil
	}
	for i := range nodes {
		n := &nodes[i]
		for _, c := range slices.Concat(n.Content, n.ListBlobs) {
			if bad[c] {
				hits = append(hits, relHit{"/" + n.Name, c})
				break
			}
		}
		if n.Type == TypeDir {
			sub, err := affected(ctx, r, n.Subtree, bad, memo)
			if err != nil {
				return nil, err
			}
			for _, h := range sub {
				hits = append(hits, relHit{"/" + n.Name + h.path, h.blob})
			}
		}
	}
	memo[tree] = hits
	return hits, nil
}
