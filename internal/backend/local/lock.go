package local

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"snap/internal/backend"
	"snap/internal/flock"
)

// Lock takes flock(LOCK_EX) on locks/write. The kernel drops the lock when the
// holder exits for any reason, so a killed run never blocks the next one.
func (b *Backend) Lock(ctx context.Context, info backend.LockInfo, wait time.Duration) (func() error, error) {
	dir := filepath.Join(b.dir, "locks")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("lock %s: %w", b.dir, err)
	}
	path := filepath.Join(dir, "write")
	f, err := flock.Acquire(ctx, path, info, wait)
	var held *flock.HeldError
	if errors.As(err, &held) {
		le := &backend.LockedError{Locator: b.dir, Waited: held.Waited}
		le.Known = json.Unmarshal(held.Holder, &le.Holder) == nil
		return nil, le
	}
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", b.dir, err)
	}
	return f.Close, nil
}
