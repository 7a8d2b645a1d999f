// Package flock takes exclusive flock(2) locks on files, waiting with
// back-off, and records who holds them. The kernel drops such a lock when
// its holder exits however it exits, so a killed process never leaves a
// lock behind. The repository write lock and the per-job lock of snap run
// both use Acquire.
package flock

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// HeldError is returned by Acquire when another process still holds the
// lock after the wait. Holder is what that process recorded (may be empty
// or stale when it has only just taken the lock).
type HeldError struct {
	Holder []byte
	Waited time.Duration // 0 when the caller did not wait
}

func (e *HeldError) Error() string { return "file is locked by another process" }

// Acquire takes the exclusive lock on path (created 0600 if missing),
// waiting up to wait, then writes holder as JSON into the file for
// messages. Closing the returned file releases the lock.
func Acquire(ctx context.Context, path string, holder any, wait time.Duration) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
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
			return nil, fmt.Errorf("flock %s: %w", path, err)
		}
		waited := time.Since(start)
		if waited >= wait {
			he := &HeldError{Waited: waited}
			if wait == 0 {
				he.Waited = 0
			}
			he.Holder, _ = os.ReadFile(path)
			f.Close()
			return nil, he
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(min(delay, wait-waited)):
		}
		delay = min(2*delay, time.Second)
	}
	data, _ := json.Marshal(holder)
	if err := f.Truncate(0); err == nil {
		f.WriteAt(data, 0) // best effort: only used to name the holder
	}
	return f, nil
}
