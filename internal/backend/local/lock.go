package local

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"snap/internal/backend"
)

// Lock takes flock(LOCK_EX) on locks/write. The kernel drops the lock when the
// holder exits for any reason, so a killed run never blocks the next one.
func (b *Backend) Lock(ctx context.Context, info backend.LockInfo, wait time.Duration) (func() error, error) {
	dir := filepath.Join(b.dir, "locks")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("lock %s: %w", b.dir, err)
	}
	path := filepath.Join(dir, "write")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", b.dir, err)
	}
	start := time.Now()
	delay := 20 * time.Millisecond
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
			f.Close()
			return nil, fmt.Errorf("lock %s: flock: %w", path, err)
		}
		waited := time.Since(start)
		if waited >= wait {
			le := &backend.LockedError{Locator: b.dir, Waited: waited}
			if data, err := os.ReadFile(path); err == nil && json.Unmarshal(data, &le.Holder) == nil {
				le.Known = true
			}
			if wait == 0 {
				le.Waited = 0
			}
			f.Close()
			return nil, le
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(min(delay, wait-waited)):
		}
		delay = min(2*delay, time.Second)
	}
	data, _ := json.Marshal(info)
	if err := f.Truncate(0); err == nil {
		f.WriteAt(data, 0) // best effort: only used to name the holder in messages
	}
	return f.Close, nil
}
