package repo

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sort"

	"snap/chunk"
	"snap/index"
	"snap/internal/backend"
	"snap/repo/pack"
)

// BlobSet is a set of blob IDs, keyed by the first 8 bytes of the ID to keep
// it small (16 bytes per blob instead of 48). Two IDs sharing 64 bits is
// vanishingly rare for SHA-256, and would only make prune keep a blob.
type BlobSet map[uint64]struct{}

func setKey(id chunk.ID) uint64 { return binary.LittleEndian.Uint64(id[:8]) }

// Add inserts id and reports whether it was new.
func (s BlobSet) Add(id chunk.ID) bool {
	k := setKey(id)
	if _, ok := s[k]; ok {
		return false
	}
	s[k] = struct{}{}
	return true
}

// Has reports whether id is in the set.
func (s BlobSet) Has(id chunk.ID) bool {
	_, ok := s[setKey(id)]
	return ok
}

// PruneOptions bound what a prune does.
type PruneOptions struct {
	// MaxUnusedBytes is how much unused data may stay in partly used packs
	// (negative: any amount, nothing is repacked).
	MaxUnusedBytes int64
	// MaxUnusedFraction, if > 0, sets MaxUnusedBytes to this share of the
	// used data (the stored bytes of the blobs that stay), as restic's
	// --max-unused counts a percentage.
	MaxUnusedFraction float64
	// MaxRepackBytes bounds the pack bytes rewritten in one run (0: no bound).
	MaxRepackBytes int64
}

// PackUsage is how much of one pack is still referenced.
type PackUsage struct {
	ID                     chunk.ID
	Size                   int64
	UsedBlobs, UnusedBlobs int
	UsedBytes, UnusedBytes int64 // stored bytes of blobs (unused includes unindexed copies)
	trailer                int64
}

// PrunePlan says what a prune deletes and repacks.
type PrunePlan struct {
	Packs           int
	TotalBytes      int64
	UsedBlobs       int
	UsedBytes       int64
	UnusedBlobs     int
	UnusedBytes     int64
	Delete          []PackUsage // packs without used blobs
	Repack          []PackUsage // partly used packs whose used blobs move
	DeleteBytes     int64
	RepackBytes     int64 // size of the packs rewritten
	RepackUsedBytes int64 // bytes copied into new packs
	FreedBytes      int64 // expected space given back
	RemainingUnused int64 // unused bytes left in kept packs
	MissingBlobs    int   // used but not in the index
	usedByPack      map[chunk.ID][]pack.Blob
}

// ErrMissingBlobs is returned by PlanPrune when snapshots reference blobs
// the index does not have; pruning then could make things worse.
var ErrMissingBlobs = errors.New("snapshots reference blobs that are not in the repository; run 'snap check' and 'snap repair snapshots' before pruning")

// PlanPrune works out what to delete and repack so that only blobs in used
// remain. It reads only the index.
func (r *Repository) PlanPrune(ctx context.Context, used BlobSet, opts PruneOptions) (*PrunePlan, error) {
	plan := &PrunePlan{usedByPack: map[chunk.ID][]pack.Blob{}}
	usage := map[chunk.ID]*PackUsage{}
	err := r.idx.Packs(func(p index.PackInfo) error {
		usage[p.ID] = &PackUsage{ID: p.ID, Size: p.Size, trailer: int64(p.Count)*pack.EntrySize + pack.FooterSize}
		plan.Packs++
		plan.TotalBytes += p.Size
		return nil
	})
	if err != nil {
		return nil, err
	}
	indexed := BlobSet{}
	err = r.idx.Blobs(func(loc index.Location) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		u := usage[loc.Pack]
		if u == nil {
			return fmt.Errorf("blob %s points at pack %s that the index does not list: %w", loc.ID.Short(), loc.Pack.Short(), index.ErrCorrupt)
		}
		indexed.Add(loc.ID)
		if used.Has(loc.ID) {
			u.UsedBlobs++
			u.UsedBytes += int64(loc.Length)
			plan.usedByPack[loc.Pack] = append(plan.usedByPack[loc.Pack], loc.Blob)
		} else {
			u.UnusedBlobs++
			u.UnusedBytes += int64(loc.Length)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for k := range used {
		if _, ok := indexed[k]; !ok {
			plan.MissingBlobs++
		}
	}
	if plan.MissingBlobs > 0 {
		return plan, fmt.Errorf("%d blobs: %w", plan.MissingBlobs, ErrMissingBlobs)
	}
	var partial []*PackUsage
	for _, u := range usage {
		// Blobs the index does not list here (copies indexed in another
		// pack) are unused space too; the trailer is not.
		u.UnusedBytes = max(0, u.Size-u.UsedBytes-u.trailer)
		plan.UsedBlobs += u.UsedBlobs
		plan.UsedBytes += u.UsedBytes
		plan.UnusedBlobs += u.UnusedBlobs
		switch {
		case u.UsedBlobs == 0:
			plan.Delete = append(plan.Delete, *u)
			plan.DeleteBytes += u.Size
		case u.UnusedBytes > 0:
			partial = append(partial, u)
			plan.RemainingUnused += u.UnusedBytes
		}
	}
	plan.UnusedBytes = plan.TotalBytes - plan.UsedBytes
	limit := opts.MaxUnusedBytes
	if opts.MaxUnusedFraction > 0 {
		// A share of the data that stays, as restic counts it.
		limit = int64(opts.MaxUnusedFraction * float64(plan.UsedBytes))
	}
	// Repack the most wasteful packs first until what is left is tolerable.
	sort.Slice(partial, func(i, j int) bool {
		a, b := partial[i], partial[j]
		return float64(a.UnusedBytes)/float64(a.Size) > float64(b.UnusedBytes)/float64(b.Size)
	})
	for _, u := range partial {
		if limit < 0 || plan.RemainingUnused <= limit {
			break
		}
		if opts.MaxRepackBytes > 0 && plan.RepackBytes+u.Size > opts.MaxRepackBytes {
			continue
		}
		plan.Repack = append(plan.Repack, *u)
		plan.RepackBytes += u.Size
		plan.RepackUsedBytes += u.UsedBytes
		plan.RemainingUnused -= u.UnusedBytes
	}
	plan.FreedBytes = plan.DeleteBytes + plan.RepackBytes - plan.RepackUsedBytes
	sort.Slice(plan.Delete, func(i, j int) bool { return idLess(plan.Delete[i].ID, plan.Delete[j].ID) })
	return plan, nil
}

func idLess(a, b chunk.ID) bool {
	for i := range a {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return false
}

// Prune carries out a plan. The order keeps the repository whole at every
// moment: used blobs are copied into new durable packs first; then one index
// transaction drops the old packs and points the moved blobs at the new
// ones; only then are old pack files deleted. A run killed anywhere leaves
// at worst unindexed packs, which the next writer indexes and a later prune
// removes. The caller must hold the write lock.
func (r *Repository) Prune(ctx context.Context, plan *PrunePlan, progress func(done, total int)) error {
	total := len(plan.Repack) + len(plan.Delete)
	newPacks, newBlobs, err := r.writeUnindexed(ctx, func() error {
		for i, u := range plan.Repack {
			if err := r.repackPack(ctx, u, plan.usedByPack[u.ID]); err != nil {
				return err
			}
			if progress != nil {
				progress(i+1, total)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	var remove []chunk.ID
	for _, u := range plan.Repack {
		remove = append(remove, u.ID)
	}
	for _, u := range plan.Delete {
		remove = append(remove, u.ID)
	}
	if err := r.idx.ReplacePacks(remove, newPacks, newBlobs); err != nil {
		return fmt.Errorf("prune: update index: %w", err)
	}
	r.forgetReserved()
	// A pack an interrupted prune left unindexed is rewritten with the same
	// bytes, so the same name: it is on the delete list (its blobs were
	// located elsewhere) and is also one of the new packs. Its file is the
	// new pack now and must stay.
	written := make(map[chunk.ID]bool, len(newPacks))
	for _, p := range newPacks {
		written[p.ID] = true
	}
	for i, id := range remove {
		if written[id] {
			continue
		}
		if err := r.be.Remove(ctx, PackName(id)); err != nil && !errors.Is(err, backend.ErrNotExist) {
			return fmt.Errorf("prune: delete pack %s: %w", id.Short(), err)
		}
		if progress != nil {
			progress(len(plan.Repack)+i+1, total)
		}
	}
	// The index dropped entries for every deleted blob; bbolt keeps the
	// freed pages in the file, which would count against the repository's
	// size until later backups reuse them.
	if _, err := r.idx.Compact(); err != nil {
		return fmt.Errorf("prune: done, but compacting the index failed (it stays as it was; the next prune tries again): %w", err)
	}
	return nil
}

// repackPack copies the used blobs of one pack into the current new pack,
// verifying each on the way so damage is never copied silently.
func (r *Repository) repackPack(ctx context.Context, u PackUsage, blobs []pack.Blob) error {
	rc, err := r.be.Load(ctx, PackName(u.ID), 0, 0)
	if err != nil {
		return fmt.Errorf("repack %s: %w", u.ID.Short(), err)
	}
	data, err := io.ReadAll(io.LimitReader(rc, u.Size+1))
	rc.Close()
	if err != nil {
		return fmt.Errorf("repack %s: %w", u.ID.Short(), err)
	}
	for _, b := range blobs {
		if b.Offset+uint64(b.Length) > uint64(len(data)) {
			return fmt.Errorf("repack %s: blob %s lies beyond the end of the pack: %w", u.ID.Short(), b.ID.Short(), ErrBlobCorrupt)
		}
		stored := data[b.Offset : b.Offset+uint64(b.Length)]
		if _, err := r.decodeBlob(u.ID, b, stored); err != nil {
			return fmt.Errorf("repack: %w", err)
		}
		if err := r.storeStored(ctx, b, stored); err != nil {
			return fmt.Errorf("repack %s: %w", u.ID.Short(), err)
		}
	}
	return nil
}

// SalvagePack copies the intact blobs of a damaged pack into new packs,
// then removes the pack from the index and deletes it, so its damaged blobs
// become missing ('repair snapshots' then rewrites the snapshots using
// them). It returns the IDs of the blobs that were lost. The caller holds
// the write lock.
func (r *Repository) SalvagePack(ctx context.Context, id chunk.ID) (lost []chunk.ID, err error) {
	size := int64(-1)
	var blobs []pack.Blob
	err = r.idx.Blobs(func(loc index.Location) error {
		if loc.Pack == id {
			blobs = append(blobs, loc.Blob)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if fi, err := r.be.Stat(ctx, PackName(id)); err == nil {
		size = fi.Size
	}
	var data []byte
	if size >= 0 {
		rc, err := r.be.Load(ctx, PackName(id), 0, 0)
		if err != nil {
			return nil, err
		}
		data, err = io.ReadAll(rc)
		rc.Close()
		if err != nil {
			return nil, err
		}
	}
	newPacks, newBlobs, err := r.writeUnindexed(ctx, func() error {
		for _, b := range blobs {
			if b.Offset+uint64(b.Length) > uint64(len(data)) {
				lost = append(lost, b.ID)
				continue
			}
			stored := data[b.Offset : b.Offset+uint64(b.Length)]
			if _, err := r.decodeBlob(id, b, stored); err != nil {
				lost = append(lost, b.ID)
				continue
			}
			if err := r.storeStored(ctx, b, stored); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := r.idx.ReplacePacks([]chunk.ID{id}, newPacks, newBlobs); err != nil {
		return nil, err
	}
	r.forgetReserved()
	for _, p := range newPacks {
		if p.ID == id {
			return lost, nil // the salvage rewrote the very same bytes
		}
	}
	if err := r.be.Remove(ctx, PackName(id)); err != nil && !errors.Is(err, backend.ErrNotExist) {
		return lost, err
	}
	return lost, nil
}

// writeUnindexed runs fn, which stores blobs, and returns the packs they went
// into without indexing them, so that the caller can swap old packs for new
// ones in one index transaction.
func (r *Repository) writeUnindexed(ctx context.Context, fn func() error) ([]index.PackInfo, [][]pack.Blob, error) {
	if err := r.Flush(ctx); err != nil {
		return nil, nil, err
	}
	r.mu.Lock()
	r.deferIndex = true
	r.deferred, r.deferredBlobs = nil, nil
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		r.deferIndex = false
		r.mu.Unlock()
	}()
	if err := fn(); err != nil {
		return nil, nil, err
	}
	if err := r.Flush(ctx); err != nil {
		return nil, nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.deferred, r.deferredBlobs, nil
}

// forgetReserved drops what this handle remembers having stored: after
// packs were removed, the index alone knows which blobs are still there.
// Everything reserved was flushed before, so nothing pending is lost.
func (r *Repository) forgetReserved() {
	r.mu.Lock()
	clear(r.reserved)
	r.mu.Unlock()
}
