package repo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"

	"snap/chunk"
	"snap/internal/backend"
)

// MaxSnapshotSize bounds a snapshot document read from a repository.
const MaxSnapshotSize = 16 << 20

// ErrSnapshotCorrupt is wrapped by errors for a snapshot document whose bytes
// do not match its name.
var ErrSnapshotCorrupt = errors.New("snapshot document damaged")

func snapshotName(id chunk.ID) string { return path.Join("snapshots", id.String()) }

// SaveSnapshotFile stores an encoded snapshot document under its hash. Call
// Flush first: the document must only name durable blobs.
func (r *Repository) SaveSnapshotFile(ctx context.Context, data []byte) (chunk.ID, error) {
	id := chunk.Hash(data)
	if err := r.be.Save(ctx, snapshotName(id), bytes.NewReader(data)); err != nil {
		return id, fmt.Errorf("save snapshot %s: %w", id.Short(), err)
	}
	r.snapshots.put(id, data)
	return id, nil
}

// LoadSnapshotFile reads a snapshot document and checks it against its ID.
func (r *Repository) LoadSnapshotFile(ctx context.Context, id chunk.ID) ([]byte, error) {
	if data, ok := r.snapshots.get(id); ok {
		return data, nil
	}
	rc, err := r.be.Load(ctx, snapshotName(id), 0, 0)
	if err != nil {
		return nil, fmt.Errorf("load snapshot %s: %w", id.Short(), err)
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, MaxSnapshotSize+1))
	if err != nil {
		return nil, fmt.Errorf("load snapshot %s: %w", id.Short(), err)
	}
	if len(data) > MaxSnapshotSize {
		return nil, fmt.Errorf("load snapshot %s: larger than %d bytes: %w", id.Short(), MaxSnapshotSize, ErrSnapshotCorrupt)
	}
	if chunk.Hash(data) != id {
		return nil, fmt.Errorf("load snapshot %s: content does not match its name: %w; run 'snap check'", id.Short(), ErrSnapshotCorrupt)
	}
	r.snapshots.put(id, data)
	return data, nil
}

// SnapshotIDs lists the snapshot documents, sorted by ID.
func (r *Repository) SnapshotIDs(ctx context.Context) ([]chunk.ID, error) {
	var ids []chunk.ID
	err := r.be.List(ctx, "snapshots", func(fi backend.FileInfo) error {
		id, err := chunk.ParseID(path.Base(fi.Name))
		if err == nil {
			ids = append(ids, id)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list snapshots: %w", err)
	}
	sort.Slice(ids, func(i, j int) bool { return bytes.Compare(ids[i][:], ids[j][:]) < 0 })
	r.snapshots.keepOnly(ids)
	return ids, nil
}

// RemoveSnapshotFile deletes a snapshot document.
func (r *Repository) RemoveSnapshotFile(ctx context.Context, id chunk.ID) error {
	r.snapshots.remove(id)
	return r.be.Remove(ctx, snapshotName(id))
}
