package snapshot

import (
	"context"
	"encoding/binary"
	"fmt"

	"github.com/cespare/xxhash/v2"

	"snap/chunk"
	"snap/index"
	"snap/repo"
	"snap/repo/pack"
)

// A large directory is stored as pages (docs/FORMAT.md, "Paged trees"):
// runs of its sorted nodes, each an ordinary tree blob, under index blobs
// that list the pages' IDs. Pages end at places chosen by the entries' names,
// so one changed entry rewrites one page (about 1 KiB) and the index instead
// of the whole directory. With eCryptfs names of 100–250 bytes a directory of
// 40 documents is 10 KiB, and every snapshot that sees one of them change
// would otherwise store those 10 KiB again, and again for each directory
// above it.
const (
	treeIndexVersion = 2
	pageThreshold    = 2048 // directories encoding to more bytes than this are paged
	pageMin          = 512  // a page ends only after this many bytes of nodes
	pageMax          = 4096 // and always once it holds this many
	indexTopMax      = 128  // at most this many IDs in the top index blob
	maxIndexDepth    = 8
)

// pageCut reports whether a page may end after the node called name (once
// it holds pageMin bytes): one name in two, chosen by the name alone, so an
// edited entry moves no page boundary.
func pageCut(name string) bool {
	return xxhash.Sum64String(name)&1 == 0
}

// encodeTreeBlobs returns the blobs that store a directory, in the order
// they are to be saved: one tree blob when it encodes to at most
// pageThreshold bytes; else the leaf pages, then the index blobs level by
// level, the top index last. The top blob's ID is the directory's tree ID.
// Nodes are sorted in place, as by EncodeTree.
func encodeTreeBlobs(nodes []Node) ([][]byte, error) {
	whole, err := EncodeTree(nodes)
	if err != nil || len(whole) <= pageThreshold {
		return [][]byte{whole}, err
	}
	var blobs [][]byte
	var ids []chunk.ID
	// Skip the whole tree's header to reach the nodes, each a uvarint
	// length and its bytes, as in a page.
	body := whole[1:]
	_, hl := binary.Uvarint(body)
	body = body[hl:]
	start, count := 0, 0
	for off := 0; off < len(body); {
		l, n := binary.Uvarint(body[off:])
		node := body[off+n : off+n+int(l)]
		off += n + int(l)
		count++
		size := off - start
		if off == len(body) || size >= pageMax || size >= pageMin && pageCut(nodeName(node)) {
			page := append([]byte{treeVersion}, binary.AppendUvarint(nil, uint64(count))...)
			page = append(page, body[start:off]...)
			blobs = append(blobs, page)
			ids = append(ids, chunk.Hash(page))
			start, count = off, 0
		}
	}
	if len(ids) == 1 {
		return [][]byte{whole}, nil
	}
	level := ids
	for depth := 1; depth <= maxIndexDepth; depth++ {
		if len(level) <= indexTopMax {
			return append(blobs, encodeTreeIndex(depth, level)), nil
		}
		var next []chunk.ID
		for _, run := range splitIDs(level) {
			b := encodeTreeIndex(depth, run)
			blobs = append(blobs, b)
			next = append(next, chunk.Hash(b))
		}
		level = next
	}
	return nil, fmt.Errorf("encode tree: %w: %d nodes need more than %d index levels", ErrBadTree, len(nodes), maxIndexDepth)
}

// nodeName returns the name field of an encoded node: its first field, tag 1.
func nodeName(node []byte) string {
	tag, n := binary.Uvarint(node)
	if tag != tagName {
		return ""
	}
	l, m := binary.Uvarint(node[n:])
	return string(node[n+m : n+m+int(l)])
}

// encodeTreeIndex encodes an index blob of a paged tree.
func encodeTreeIndex(depth int, ids []chunk.ID) []byte {
	b := []byte{treeIndexVersion}
	b = binary.AppendUvarint(b, uint64(depth))
	b = binary.AppendUvarint(b, uint64(len(ids)))
	for _, id := range ids {
		b = append(b, id[:]...)
	}
	return b
}

// DecodeTreeIndex decodes an index blob of a paged tree: its depth (1: the
// IDs are leaf pages, d > 1: index blobs of depth d-1) and the IDs.
func DecodeTreeIndex(data []byte) (int, []chunk.ID, error) {
	if len(data) == 0 || data[0] != treeIndexVersion {
		return 0, nil, fmt.Errorf("%w: not a tree index", ErrBadTree)
	}
	r := &reader{b: data[1:]}
	depth := r.uvarint()
	count := r.uvarint()
	if r.err != nil {
		return 0, nil, r.err
	}
	if depth < 1 || depth > maxIndexDepth {
		return 0, nil, fmt.Errorf("%w: tree index depth %d", ErrBadTree, depth)
	}
	if count < 1 || count > listMax || uint64(len(r.b)) != count*chunk.IDSize {
		return 0, nil, fmt.Errorf("%w: tree index of %d IDs in %d bytes", ErrBadTree, count, len(r.b))
	}
	ids := make([]chunk.ID, count)
	for i := range ids {
		ids[i] = chunk.ID(r.b[i*chunk.IDSize : (i+1)*chunk.IDSize])
	}
	return int(depth), ids, nil
}

// saveTree stores a directory (paged when large) and returns its tree ID.
// added, if set, is called for each blob this call stored.
func saveTree(ctx context.Context, r *repo.Repository, nodes []Node, added func(raw, stored int)) (chunk.ID, error) {
	blobs, err := encodeTreeBlobs(nodes)
	if err != nil {
		return chunk.ID{}, err
	}
	var id chunk.ID
	for _, b := range blobs {
		var n int
		id, n, err = r.SaveBlob(ctx, pack.TreeBlob, b)
		if err != nil {
			return id, err
		}
		if n > 0 && added != nil {
			added(len(b), n)
		}
	}
	return id, nil
}

// expandTreePages reads the pages under the top index blob data and returns
// their nodes in order and the IDs of every blob below the top (index blobs
// and pages). Each level's blobs are looked up in one index transaction.
//
// skip, if not nil, is asked about each page or index blob that is missing
// or does not decode; if it returns true the blob (and, for an index blob,
// every page below it) is left out instead of failing the whole tree. Only
// 'repair snapshots' passes one.
func expandTreePages(ctx context.Context, r *repo.Repository, data []byte, skip func(id chunk.ID, err error) bool) ([]Node, []chunk.ID, error) {
	depth, level, err := DecodeTreeIndex(data)
	if err != nil {
		return nil, nil, err
	}
	// failed returns err for blob id, or nil when skip lets it go.
	failed := func(id chunk.ID, err error) error {
		if skip != nil && skip(id, err) {
			return nil
		}
		return err
	}
	var below []chunk.ID
	var nodes []Node
	for ; depth >= 1; depth-- {
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		below = append(below, level...)
		locs := make([]index.Location, len(level))
		found := make([]bool, len(level))
		err := r.Index().LookupMany(level, func(i int, loc index.Location, ok bool) error {
			if !ok {
				return failed(level[i], fmt.Errorf("tree page %s: %w", level[i].Short(), repo.ErrBlobMissing))
			}
			locs[i], found[i] = loc, true
			return nil
		})
		if err != nil {
			return nil, nil, err
		}
		var next []chunk.ID
		pages := make([][]byte, len(locs))
		total := 0
		for i, loc := range locs {
			if !found[i] {
				continue
			}
			b, err := r.LoadBlobAt(ctx, loc)
			if err != nil {
				if err := failed(level[i], fmt.Errorf("tree page %s: %w", level[i].Short(), err)); err != nil {
					return nil, nil, err
				}
				continue
			}
			pages[i] = b
			if depth == 1 {
				total += treeNodeCount(b)
			}
		}
		if depth == 1 {
			// The pages' nodes go straight into one slice of their total
			// size, not through a slice per page.
			nodes = make([]Node, 0, min(total, MaxTreeNodes))
		}
		for i, b := range pages {
			if b == nil {
				continue // skipped above
			}
			if depth > 1 {
				d, ids, err := DecodeTreeIndex(b)
				if err == nil && d != depth-1 {
					err = fmt.Errorf("%w: depth %d under depth %d", ErrBadTree, d, depth)
				}
				if err != nil {
					if err := failed(level[i], fmt.Errorf("tree index %s: %w", level[i].Short(), err)); err != nil {
						return nil, nil, err
					}
					continue
				}
				if len(next)+len(ids) > MaxTreeNodes {
					return nil, nil, fmt.Errorf("%w: more than %d pages", ErrBadTree, MaxTreeNodes)
				}
				next = append(next, ids...)
				continue
			}
			got, err := appendTree(nodes, b)
			if err == nil && len(got) == len(nodes) {
				err = fmt.Errorf("%w: empty", ErrBadTree)
			}
			if err != nil {
				if err := failed(level[i], fmt.Errorf("tree page %s: %w", level[i].Short(), err)); err != nil {
					return nil, nil, err
				}
				continue
			}
			nodes = got
			if len(nodes) > MaxTreeNodes {
				return nil, nil, fmt.Errorf("%w: more than %d nodes", ErrBadTree, MaxTreeNodes)
			}
		}
		level = next
	}
	return nodes, below, nil
}
