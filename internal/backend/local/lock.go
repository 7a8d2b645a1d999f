package local

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
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
	f, err := flock.Acquire(ctx, filepath.Join(dir, "write"), info, wait)
	return b.unlocker(f, err, "lock")
}

// unlocker turns what flock returned into Lock's results: a HeldError
// becomes a LockedError naming the holder the lock file records.
func (b *Backend) unlocker(f *os.File, err error, what string) (func() error, error) {
	var held *flock.HeldError
	if errors.As(err, &held) {
		le := &backend.LockedError{Locator: b.dir, Waited: held.Waited}
		le.Known = json.Unmarshal(held.Holder, &le.Holder) == nil
		return nil, le
	}
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", what, b.dir, err)
	}
	return f.Close, nil
}

// readLock is the file readers lock shared and a prune exclusively.
func (b *Backend) readLock() string { return filepath.Join(b.dir, "locks", "read") }

// LockRead takes flock(LOCK_SH) on locks/read (see backend.ReadLocker). A
// reader that may not open locks/read, or create it where it is missing
// (another user's repository, read-only media), reads without the lock, as
// it did before there was one.
func (b *Backend) LockRead(ctx context.Context, info backend.LockInfo, wait time.Duration) (func() error, error) {
	path := b.readLock()
	f, err := flock.AcquireShared(ctx, path, wait)
	if errors.Is(err, os.ErrNotExist) {
		if err = b.createReadLock(); err == nil {
			f, err = flock.AcquireShared(ctx, path, wait)
		}
	}
	if errors.Is(err, os.ErrPermission) || errors.Is(err, syscall.EROFS) {
		return func() error { return nil }, nil
	}
	return b.unlocker(f, err, "read lock")
}

func (b *Backend) createReadLock() error {
	if err := os.MkdirAll(filepath.Join(b.dir, "locks"), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(b.readLock(), os.O_RDONLY|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	return f.Close()
}

// ExcludeReaders takes flock(LOCK_EX) on locks/read and records info in it,
// so that readers kept waiting can name the prune. Readers in the way are
// named from /proc/locks: a shared lock has no room for its holders.
func (b *Backend) ExcludeReaders(ctx context.Context, info backend.LockInfo, wait time.Duration) (func() error, error) {
	if err := b.createReadLock(); err != nil {
		return nil, fmt.Errorf("read lock %s: %w", b.dir, err)
	}
	f, err := flock.Acquire(ctx, b.readLock(), info, wait)
	var held *flock.HeldError
	if errors.As(err, &held) {
		le := &backend.LockedError{Locator: b.dir, Waited: held.Waited, Readers: true}
		if ps, herr := flock.Holders(b.readLock()); herr == nil && len(ps) > 0 {
			host, _ := os.Hostname()
			le.Holder = backend.LockInfo{Host: host, PID: ps[0].PID, Command: ps[0].Command}
			le.Known, le.More = true, len(ps)-1
		}
		return nil, le
	}
	if err != nil {
		return nil, fmt.Errorf("read lock %s: %w", b.dir, err)
	}
	return f.Close, nil
}
