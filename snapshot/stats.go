package snapshot

import (
	"context"

	"snap/chunk"
	"snap/index"
	"snap/repo"
)

// Stats describes what snapshots hold and what they cost.
type Stats struct {
	Snapshots     int             `json:"snapshots"`
	RestoreSize   uint64          `json:"restore_size"`   // sum of file sizes over all given snapshots
	Files         uint64          `json:"files"`          // file entries over all given snapshots
	UniqueBlobs   int             `json:"unique_blobs"`   // distinct blobs referenced
	UniqueRaw     uint64          `json:"unique_raw"`     // their raw bytes
	UniqueStored  uint64          `json:"unique_stored"`  // their stored (compressed) bytes
	DedupRatio    float64         `json:"dedup_ratio"`    // restore size / unique raw bytes
	CompressRatio float64         `json:"compress_ratio"` // unique raw / unique stored bytes
	Per           []SnapshotStats `json:"per_snapshot"`
}

// SnapshotStats is one snapshot's share.
type SnapshotStats struct {
	ID          string `json:"id"`
	RestoreSize uint64 `json:"restore_size"`
	Files       uint64 `json:"files"`
	AddedBlobs  int    `json:"added_blobs"`  // blobs no earlier snapshot of the list references
	AddedStored uint64 `json:"added_stored"` // their stored bytes
}

type treeSize struct{ bytes, files uint64 }

// ComputeStats walks snaps (oldest first) once per distinct tree.
func ComputeStats(ctx context.Context, r *repo.Repository, snaps []*Snapshot) (*Stats, error) {
	st := &Stats{Snapshots: len(snaps)}
	sizes := map[chunk.ID]treeSize{}
	seen := repo.BlobSet{}
	for _, sn := range snaps {
		var added []chunk.ID
		size, err := walkStats(ctx, r, sn.Tree, sizes, seen, &added)
		if err != nil {
			return nil, err
		}
		ps := SnapshotStats{ID: sn.ID.String(), RestoreSize: size.bytes, Files: size.files, AddedBlobs: len(added)}
		err = r.Index().LookupMany(added, func(i int, loc index.Location, found bool) error {
			if found {
				ps.AddedStored += uint64(loc.Length)
				st.UniqueRaw += uint64(loc.RawLength)
				st.UniqueStored += uint64(loc.Length)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		st.UniqueBlobs += len(added)
		st.RestoreSize += size.bytes
		st.Files += size.files
		st.Per = append(st.Per, ps)
	}
	if st.UniqueRaw > 0 {
		st.DedupRatio = float64(st.RestoreSize) / float64(st.UniqueRaw)
	}
	if st.UniqueStored > 0 {
		st.CompressRatio = float64(st.UniqueRaw) / float64(st.UniqueStored)
	}
	return st, nil
}

// walkStats returns the size of a tree (memoized) and appends blobs not
// seen before to added. A tree seen before has all its blobs seen.
func walkStats(ctx context.Context, r *repo.Repository, id chunk.ID, sizes map[chunk.ID]treeSize, seen repo.BlobSet, added *[]chunk.ID) (treeSize, error) {
	if s, ok := sizes[id]; ok {
		return s, nil
	}
	if err := ctx.Err(); err != nil {
		return treeSize{}, err
	}
	if seen.Add(id) {
		*added = append(*added, id)
	}
	nodes, below, err := loadTree(ctx, r, id)
	if err != nil {
		return treeSize{}, err
	}
	for _, b := range below {
		if seen.Add(b) {
			*added = append(*added, b)
		}
	}
	var s treeSize
	for i := range nodes {
		n := &nodes[i]
		switch n.Type {
		case TypeFile:
			s.bytes += n.Size
			s.files++
			for _, c := range n.Content {
				if seen.Add(c) {
					*added = append(*added, c)
				}
			}
			for _, c := range n.ListBlobs {
				if seen.Add(c) {
					*added = append(*added, c)
				}
			}
		case TypeDir:
			sub, err := walkStats(ctx, r, n.Subtree, sizes, seen, added)
			if err != nil {
				return treeSize{}, err
			}
			s.bytes += sub.bytes
			s.files += sub.files
		}
	}
	sizes[id] = s
	return s, nil
}
