// Package flock takes flock(2) locks on files, waiting with back-off, and
// records who holds them. The kernel drops such a lock when its holder
// exits however it exits, so a killed process never leaves a lock behind.
// The repository write lock and the per-job lock of snap run use Acquire;
// the repository's read lock uses AcquireShared for readers and Acquire for
// a prune, which finds the readers in its way with Holders.
package flock

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
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
	if err := take(ctx, f, unix.LOCK_EX, wait); err != nil {
		return nil, err
	}
	data, _ := json.Marshal(holder)
	if err := f.Truncate(0); err == nil {
		f.WriteAt(data, 0) // best effort: only used to name the holder
	}
	return f, nil
}

// AcquireShared takes a shared lock on path, which must exist, waiting up
// to wait for an exclusive holder to let go. It needs only read access to
// the file. Closing the returned file releases the lock.
func AcquireShared(ctx context.Context, path string, wait time.Duration) (*os.File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	if err := take(ctx, f, unix.LOCK_SH, wait); err != nil {
		return nil, err
	}
	return f, nil
}

// take locks f with how (LOCK_EX or LOCK_SH), waiting up to wait; it closes
// f when it fails.
func take(ctx context.Context, f *os.File, how int, wait time.Duration) error {
	path := f.Name()
	start := time.Now()
	delay := 20 * time.Millisecond
	for {
		err := unix.Flock(int(f.Fd()), how|unix.LOCK_NB)
		if err == nil {
			return nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
			f.Close()
			return fmt.Errorf("flock %s: %w", path, err)
		}
		waited := time.Since(start)
		if waited >= wait {
			he := &HeldError{Waited: waited}
			if wait == 0 {
				he.Waited = 0
			}
			he.Holder, _ = os.ReadFile(path)
			f.Close()
			return he
		}
		select {
		case <-ctx.Done():
			f.Close()
			return ctx.Err()
		case <-time.After(min(delay, wait-waited)):
		}
		delay = min(2*delay, time.Second)
	}
}

// Process is a process holding a lock.
type Process struct {
	PID     int
	Command string // its command line, shortened; "" if unknown
}

// Holders lists the processes of this machine that hold a flock lock on
// path's file, from /proc/locks (which names the file by device and inode).
// A shared lock has no room for its holders' names, so this is how a
// prune names the readers in its way.
func Holders(path string) ([]Process, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return nil, err
	}
	data, err := os.ReadFile("/proc/locks")
	if err != nil {
		return nil, err
	}
	return parseLocks(data, unix.Major(st.Dev), unix.Minor(st.Dev), st.Ino, commandLine), nil
}

// parseLocks picks the holders of flock locks on the file major:minor:ino
// out of /proc/locks. Lines look like
// "1: FLOCK  ADVISORY  READ 1234 fd:01:56789 0 EOF"; a waiting request has
// "->" after its number and holds nothing.
func parseLocks(data []byte, major, minor uint32, ino uint64, cmd func(pid int) string) []Process {
	want := fmt.Sprintf("%02x:%02x:%d", major, minor, ino)
	// Some file systems (btrfs subvolumes, overlayfs) report another device
	// to stat(2) than /proc/locks shows: then the inode alone has to do.
	exact := strings.Contains(string(data), " "+want+" ")
	var out []Process
	seen := map[int]bool{}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 6 || f[1] != "FLOCK" {
			continue
		}
		if exact && f[5] != want || !exact && !strings.HasSuffix(f[5], fmt.Sprintf(":%d", ino)) {
			continue
		}
		pid, err := strconv.Atoi(f[4])
		if err != nil || pid <= 0 || seen[pid] {
			continue
		}
		seen[pid] = true
		out = append(out, Process{PID: pid, Command: cmd(pid)})
	}
	return out
}

// commandLine returns the command line of process pid, shortened to fit in
// a message, or "".
func commandLine(pid int) string {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return ""
	}
	s := strings.TrimSpace(strings.ReplaceAll(string(data), "\x00", " "))
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}
