package repo

import (
	"context"
	"fmt"
	"io"
	"path"
	"sort"

	"snap/chunk"
	"snap/index"
	"snap/internal/backend"
	"snap/repo/pack"
)

// Severity of a check finding.
const (
	SeverityError = "error" // data is missing or damaged
	SeverityNote  = "note"  // harmless, fixed by the next write or prune
)

// Finding is one result of a check.
type Finding struct {
	Severity string
	Pack     chunk.ID   // zero if not about one pack
	Blobs    []chunk.ID // damaged or missing blobs, if known
	Msg      string
}

// CheckPacks compares the index with the pack files and their trailers: every
// indexed pack exists with its size, every indexed blob is where the trailer
// says, and packs the index does not know are reported. It reads only
// trailers, not data.
func (r *Repository) CheckPacks(ctx context.Context, report func(Finding)) error {
	onDisk := map[chunk.ID]int64{}
	err := r.be.List(ctx, "data", func(fi backend.FileInfo) error {
		id, err := chunk.ParseID(path.Base(fi.Name))
		if err != nil || PackName(id) != fi.Name {
			report(Finding{Severity: SeverityNote, Msg: fmt.Sprintf("%s is not a pack file; it is ignored", fi.Name)})
			return nil
		}
		onDisk[id] = fi.Size
		return nil
	})
	if err != nil {
		return fmt.Errorf("list packs: %w", err)
	}
	byPack := map[chunk.ID][]pack.Blob{}
	err = r.idx.Blobs(func(loc index.Location) error {
		byPack[loc.Pack] = append(byPack[loc.Pack], loc.Blob)
		return nil
	})
	if err != nil {
		return err
	}
	var indexed []index.PackInfo
	if err := r.idx.Packs(func(p index.PackInfo) error { indexed = append(indexed, p); return nil }); err != nil {
		return err
	}
	for _, p := range indexed {
		if err := ctx.Err(); err != nil {
			return err
		}
		size, ok := onDisk[p.ID]
		delete(onDisk, p.ID)
		blobIDs := func() []chunk.ID {
			var ids []chunk.ID
			for _, b := range byPack[p.ID] {
				ids = append(ids, b.ID)
			}
			return ids
		}
		if !ok {
			report(Finding{SeverityError, p.ID, blobIDs(), fmt.Sprintf("pack %s is in the index but missing from data/", p.ID.Short())})
			continue
		}
		if size != p.Size {
			report(Finding{SeverityError, p.ID, blobIDs(), fmt.Sprintf("pack %s is %d bytes, the index says %d", p.ID.Short(), size, p.Size)})
			continue
		}
		trailer, tailID, err := pack.ReadTrailerID(backend.ReaderAt{Ctx: ctx, Backend: r.be, Name: PackName(p.ID)}, size)
		if err != nil {
			report(Finding{SeverityError, p.ID, blobIDs(), fmt.Sprintf("pack %s: cannot read its trailer: %v", p.ID.Short(), err)})
			continue
		}
		if r.cfg.PackNaming() == pack.TrailerAndFooter && tailID != p.ID {
			report(Finding{SeverityError, p.ID, blobIDs(), fmt.Sprintf("pack %s: its trailer does not match its name (SHA-256); run 'snap check --read-data' to find the damaged blobs", p.ID.Short())})
			continue
		}
		inTrailer := map[chunk.ID]pack.Blob{}
		for _, b := range trailer {
			inTrailer[b.ID] = b
		}
		for _, b := range byPack[p.ID] {
			if t, ok := inTrailer[b.ID]; !ok || t != b {
				report(Finding{SeverityError, p.ID, []chunk.ID{b.ID}, fmt.Sprintf("pack %s: the index entry of blob %s does not match the pack's trailer; run 'snap repair index'", p.ID.Short(), b.ID.Short())})
			}
		}
	}
	var extra []chunk.ID
	for id := range onDisk {
		extra = append(extra, id)
	}
	sort.Slice(extra, func(i, j int) bool { return idLess(extra[i], extra[j]) })
	for _, id := range extra {
		report(Finding{Severity: SeverityNote, Pack: id, Msg: fmt.Sprintf("pack %s is not in the index (left by an interrupted run); the next create or prune indexes it", id.Short())})
	}
	return nil
}

// PackList returns the indexed packs sorted by ID, for choosing subsets.
func (r *Repository) PackList() ([]index.PackInfo, error) {
	var packs []index.PackInfo
	if err := r.idx.Packs(func(p index.PackInfo) error { packs = append(packs, p); return nil }); err != nil {
		return nil, err
	}
	sort.Slice(packs, func(i, j int) bool { return idLess(packs[i].ID, packs[j].ID) })
	return packs, nil
}

// CheckPackData reads a whole pack, checks that its name is the SHA-256 the
// repository's pack naming asks for, and verifies every blob in its trailer (checksum, decompression,
// SHA-256). It returns the damaged blobs.
func (r *Repository) CheckPackData(ctx context.Context, p index.PackInfo) ([]chunk.ID, error) {
	rc, err := r.be.Load(ctx, PackName(p.ID), 0, 0)
	if err != nil {
		return nil, err
	}
	data, err := io.ReadAll(io.LimitReader(rc, p.Size+1))
	rc.Close()
	if err != nil {
		return nil, err
	}
	trailer, terr := pack.ReadTrailer(bytesReaderAt(data), int64(len(data)))
	var bad []chunk.ID
	if terr != nil {
		// Without a trailer, fall back to what the index says is inside.
		err := r.idx.Blobs(func(loc index.Location) error {
			if loc.Pack == p.ID {
				bad = append(bad, loc.ID)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		return bad, fmt.Errorf("pack %s: %w", p.ID.Short(), terr)
	}
	var sumErr error
	if id, err := pack.ID(r.cfg.PackNaming(), data); err != nil || id != p.ID {
		sumErr = fmt.Errorf("pack %s: content does not match its name (SHA-256): %w", p.ID.Short(), ErrBlobCorrupt)
	}
	for _, b := range trailer {
		stored := data[b.Offset : b.Offset+uint64(b.Length)]
		if _, err := r.decodeBlob(p.ID, b, stored); err != nil {
			bad = append(bad, b.ID)
		}
	}
	if sumErr != nil && len(bad) == 0 {
		// Damage outside the blobs (padding, trailer) loses nothing, but is reported.
		return nil, sumErr
	}
	return bad, sumErr
}

type bytesReaderAt []byte

func (b bytesReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off > int64(len(b)) {
		return 0, io.EOF
	}
	n := copy(p, b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}
