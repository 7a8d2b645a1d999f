package main

import (
	"context"
	"errors"
	"fmt"

	"snap/internal/backend"
	"snap/repo"
)

// openLocked opens the repository and takes the write lock for command. The
// returned function releases the lock and closes the repository.
func (g *globals) openLocked(ctx context.Context, command string) (*repo.Repository, func(), error) {
	r, err := g.open(ctx, "")
	if err != nil {
		return nil, nil, err
	}
	unlock, err := g.lock(ctx, r, command)
	if err != nil {
		r.Close()
		return nil, nil, err
	}
	return r, func() { unlock(); r.Close() }, nil
}

// openRead opens the repository for a command that reads packs and takes
// the read lock, so that no prune removes packs under it (unless
// --no-lock). The returned function releases the lock and closes the
// repository.
func (g *globals) openRead(ctx context.Context, command string) (*repo.Repository, func(), error) {
	r, err := g.open(ctx, "")
	if err != nil {
		return nil, nil, err
	}
	if g.noLock {
		return r, func() { r.Close() }, nil
	}
	info, wait, err := g.lockArgs(command)
	if err != nil {
		r.Close()
		return nil, nil, err
	}
	unlock, err := r.LockRead(ctx, info, wait)
	if err != nil {
		r.Close()
		if !errors.Is(err, backend.ErrLocked) && ctx.Err() == nil {
			// Typically storage this user may read but not write.
			err = fmt.Errorf("take the read lock: %w; to read without it, use --no-lock (a prune may then remove data while this reads)", err)
		}
		return nil, nil, err
	}
	return r, func() { unlock(); r.Close() }, nil
}

// excludeReaders keeps readers out of r, whose write lock the caller holds,
// before command removes packs.
func (g *globals) excludeReaders(ctx context.Context, r *repo.Repository, command string) (func() error, error) {
	info, wait, err := g.lockArgs(command)
	if err != nil {
		return nil, err
	}
	return r.ExcludeReaders(ctx, info, wait)
}
