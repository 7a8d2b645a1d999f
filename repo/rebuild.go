package repo

import (
	"context"
	"errors"
	"fmt"
	"os"

	"snap/index"
	"snap/internal/backend"
)

// RebuildIndex builds a new index from the pack trailers alone and puts it
// in place of the file at indexPath. It builds into a temporary file and
// renames it over the old one, so a reader sees the old index or the whole
// new one, never a missing or half-built one. It returns the number of packs
// and blobs indexed. The caller holds the write lock.
func RebuildIndex(ctx context.Context, be backend.Backend, indexPath string) (packs, blobs int, err error) {
	data, err := backend.LoadAll(ctx, be, "config")
	if errors.Is(err, backend.ErrNotExist) {
		return 0, 0, fmt.Errorf("%w at %s; create one with 'snap init'", ErrNoRepository, be.Location())
	}
	if err != nil {
		return 0, 0, fmt.Errorf("rebuild index: read config: %w", err)
	}
	cfg, err := ParseConfig(data)
	if err != nil {
		return 0, 0, fmt.Errorf("rebuild index: %w", err)
	}
	tmp := indexPath + ".new"
	if err := os.Remove(tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
		return 0, 0, fmt.Errorf("rebuild index: %w", err)
	}
	idx, err := index.Open(tmp, cfg.ID)
	if err != nil {
		return 0, 0, fmt.Errorf("rebuild index: %w", err)
	}
	r := &Repository{be: be, cfg: cfg, idx: idx}
	_, err = r.IndexNewPacks(ctx)
	if err == nil {
		packs, blobs, err = idx.Stats()
	}
	if cerr := idx.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = syncPath(tmp)
	}
	if err == nil {
		err = os.Rename(tmp, indexPath)
	}
	if err != nil {
		os.Remove(tmp)
		return 0, 0, fmt.Errorf("rebuild index %s: %w", indexPath, err)
	}
	return packs, blobs, nil
}

func syncPath(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}
