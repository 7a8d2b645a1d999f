package snapshot

import (
	"context"
	"fmt"

	"snap/chunk"
	"snap/repo"
	"snap/repo/pack"
)

// CopyStats counts what Copy transferred.
type CopyStats struct {
	Blobs int64 // blobs the destination did not have
	Bytes int64 // their raw bytes
}

// Copier copies snapshots between repositories, sending only the blobs the
// destination lacks. Trees already copied (or found in the destination) are
// not walked again, so copying many snapshots of the same data costs little.
type Copier struct {
	src, dst *repo.Repository
	seen     repo.BlobSet
	Stats    CopyStats
}

// NewCopier returns a Copier; the caller holds dst's write lock.
func NewCopier(src, dst *repo.Repository) *Copier {
	return &Copier{src: src, dst: dst, seen: repo.BlobSet{}}
}

// Copy makes sn complete in the destination and then writes its document,
// byte for byte, so it keeps its ID there: a second copy finds it and does
// nothing.
func (c *Copier) Copy(ctx context.Context, sn *Snapshot) error {
	if _, err := c.dst.LoadSnapshotFile(ctx, sn.ID); err == nil {
		return nil
	}
	if err := c.tree(ctx, sn.Tree); err != nil {
		return fmt.Errorf("copy snapshot %s: %w", sn.ID.Short(), err)
	}
	if err := c.dst.Flush(ctx); err != nil {
		return err
	}
	doc, err := c.src.LoadSnapshotFile(ctx, sn.ID)
	if err != nil {
		return err
	}
	if _, err := c.dst.SaveSnapshotFile(ctx, doc); err != nil {
		return err
	}
	return nil
}

func (c *Copier) tree(ctx context.Context, id chunk.ID) error {
	if !c.seen.Add(id) {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	nodes, below, err := loadTree(ctx, c.src, id)
	if err != nil {
		return err
	}
	for i := range nodes {
		n := &nodes[i]
		for _, b := range append(append([]chunk.ID(nil), n.ListBlobs...), n.Content...) {
			if err := c.blob(ctx, pack.DataBlob, b); err != nil {
				return err
			}
		}
		if n.Type == TypeDir {
			if err := c.tree(ctx, n.Subtree); err != nil {
				return err
			}
		}
	}
	// The tree last: a tree in the destination means all below it is there.
	// Its pages go first, the deepest level first (below lists the top
	// index's children first).
	for i := len(below) - 1; i >= 0; i-- {
		if err := c.blob(ctx, pack.TreeBlob, below[i]); err != nil {
			return err
		}
	}
	return c.blob(ctx, pack.TreeBlob, id)
}

// blob copies one blob if the destination lacks it.
func (c *Copier) blob(ctx context.Context, t pack.BlobType, id chunk.ID) error {
	if t == pack.DataBlob && !c.seen.Add(id) {
		return nil
	}
	must, err := c.dst.Reserve(id)
	if err != nil || !must {
		return err
	}
	data, err := c.src.LoadBlob(ctx, t, id)
	if err != nil {
		return err
	}
	if _, err := c.dst.StoreBlob(ctx, t, id, data); err != nil {
		return err
	}
	c.Stats.Blobs++
	c.Stats.Bytes += int64(len(data))
	return nil
}
