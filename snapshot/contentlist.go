package snapshot

import (
	"context"
	"encoding/binary"
	"fmt"

	"snap/chunk"
	"snap/repo"
	"snap/repo/pack"
)

// A file with many chunks keeps its chunk IDs not in its tree node but in
// content-list blobs (docs/FORMAT.md, tag 24), cut at content-defined places
// among the IDs and stacked into levels. Editing one chunk of a large file
// then rewrites one small list per level instead of the whole ID list in
// the directory's tree blob: with 4 KiB ciphertext chunks, the inline list
// of a 100 MiB database would add 800 KiB to every snapshot that saw it
// change. Lists average 1.25 KiB, so a day of scattered page writes into a
// database rewrites about 1 KiB of lists per page written.
const (
	// inlineContentMax is the most chunk IDs kept inline in a node.
	inlineContentMax = 128
	listMin          = 8   // IDs per list blob, at least (but the last)
	listMax          = 512 // and at most
	listCutMask      = 31  // a list ends after an ID whose cut value is this (average 40 IDs: 1.25 KiB)
	maxListDepth     = 8
)

// listCut reports whether a content list ends after id. IDs are SHA-256, so
// their last bytes are uniform; the choice depends only on the ID, which
// makes unchanged runs of IDs fall into the same lists again.
func listCut(id chunk.ID) bool {
	return binary.LittleEndian.Uint16(id[30:])&listCutMask == listCutMask
}

// splitIDs cuts ids into runs of listMin..listMax at content-defined places.
func splitIDs(ids []chunk.ID) [][]chunk.ID {
	var out [][]chunk.ID
	start := 0
	for i, id := range ids {
		n := i - start + 1
		if n >= listMax || n >= listMin && listCut(id) {
			out = append(out, ids[start:i+1])
			start = i + 1
		}
	}
	if start < len(ids) {
		out = append(out, ids[start:])
	}
	return out
}

// buildContentLists stores the list blobs for content and returns the
// depth and the top-level list IDs to record in the node. storeList saves
// one list blob (deduplicated) and returns its ID.
func buildContentLists(content []chunk.ID, storeList func([]byte) (chunk.ID, error)) (int, []chunk.ID, error) {
	level := content
	for depth := 1; depth <= maxListDepth; depth++ {
		var next []chunk.ID
		for _, run := range splitIDs(level) {
			buf := make([]byte, 0, len(run)*chunk.IDSize)
			for _, id := range run {
				buf = append(buf, id[:]...)
			}
			id, err := storeList(buf)
			if err != nil {
				return 0, nil, err
			}
			next = append(next, id)
		}
		if len(next) <= inlineContentMax {
			return depth, next, nil
		}
		level = next
	}
	return 0, nil, fmt.Errorf("content of %d chunks needs more than %d list levels", len(content), maxListDepth)
}

// saveContentLists moves a long content list of n into list blobs.
func saveContentLists(ctx context.Context, r *repo.Repository, n *Node, added func(raw, stored int)) error {
	if len(n.Content) <= inlineContentMax {
		return nil
	}
	depth, top, err := buildContentLists(n.Content, func(b []byte) (chunk.ID, error) {
		id := chunk.Hash(b)
		must, err := r.Reserve(id)
		if err != nil || !must {
			return id, err
		}
		stored, err := r.StoreIncompressible(ctx, pack.DataBlob, id, b)
		if err == nil {
			added(len(b), stored)
		}
		return id, err
	})
	if err != nil {
		return err
	}
	n.ListDepth, n.Lists = depth, top
	return nil
}

// ExpandContentLists fills Content (and ListBlobs) of nodes that keep their
// chunk IDs in list blobs. LoadTree calls it; a reader that decodes tree
// blobs itself must call it too.
func ExpandContentLists(ctx context.Context, r *repo.Repository, nodes []Node) error {
	return expandContentLists(ctx, r, nodes, nil)
}

// expandContentLists is ExpandContentLists that, when skip is not nil,
// asks it about each node whose lists cannot be read or decoded and, if it
// returns true, leaves that node's Content empty and goes on.
func expandContentLists(ctx context.Context, r *repo.Repository, nodes []Node, skip func(i int, err error) bool) error {
	for i := range nodes {
		if err := expandNodeLists(ctx, r, &nodes[i]); err != nil {
			if skip != nil && skip(i, err) {
				nodes[i].Content = nil
				continue
			}
			return err
		}
	}
	return nil
}

// expandNodeLists fills n.Content (and ListBlobs) from n's list blobs.
func expandNodeLists(ctx context.Context, r *repo.Repository, n *Node) error {
	if len(n.Lists) == 0 {
		return nil
	}
	level := n.Lists
	n.ListBlobs = append([]chunk.ID(nil), n.Lists...)
	for d := n.ListDepth; d >= 1; d-- {
		var next []chunk.ID
		for _, id := range level {
			data, err := r.LoadBlob(ctx, pack.DataBlob, id)
			if err != nil {
				return fmt.Errorf("content list of %q: %w", n.Name, err)
			}
			if len(data) == 0 || len(data)%chunk.IDSize != 0 || len(data)/chunk.IDSize > listMax {
				return fmt.Errorf("content list %s of %q: %d bytes: %w", id.Short(), n.Name, len(data), ErrBadTree)
			}
			if len(next)+len(data)/chunk.IDSize > MaxNodeContent {
				return fmt.Errorf("content of %q: more than %d chunks: %w", n.Name, MaxNodeContent, ErrBadTree)
			}
			for k := 0; k < len(data); k += chunk.IDSize {
				next = append(next, chunk.ID(data[k:k+chunk.IDSize]))
			}
		}
		if d > 1 {
			n.ListBlobs = append(n.ListBlobs, next...)
		}
		level = next
	}
	n.Content = level
	return nil
}
