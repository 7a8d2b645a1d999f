package main

import (
	"context"

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
