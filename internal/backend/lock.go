package backend

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrLocked is wrapped by errors returned when another process holds the
// repository's write lock.
var ErrLocked = errors.New("repository is locked")

// LockInfo describes the holder of a lock.
type LockInfo struct {
	Host    string    `json:"host"`
	PID     int       `json:"pid"`
	Command string    `json:"command"`
	Start   time.Time `json:"start"`
}

func (l LockInfo) String() string {
	return fmt.Sprintf("pid %d on %s (%q, since %s)", l.PID, l.Host, l.Command, l.Start.Local().Format("2006-01-02 15:04:05"))
}

// LockedError says who holds a lock. It matches ErrLocked with errors.Is.
type LockedError struct {
	Holder  LockInfo
	Known   bool // false when the holder could not be read
	Waited  time.Duration
	Locator string
}

func (e *LockedError) Error() string {
	who := "another process"
	if e.Known {
		who = e.Holder.String()
	}
	msg := fmt.Sprintf("repository %s is locked by %s", e.Locator, who)
	if e.Waited > 0 {
		msg += fmt.Sprintf("; gave up after waiting %s", e.Waited.Round(time.Second))
	}
	return msg + "; wait for it to finish, or use --lock-wait DURATION to wait for it"
}

// Is makes errors.Is(err, ErrLocked) true.
func (e *LockedError) Is(target error) bool { return target == ErrLocked }

// Locker is implemented by backends that lock the repository for a writer.
// Lock returns ErrLocked (as *LockedError) when the lock is still held by
// another process after waiting up to wait.
type Locker interface {
	Lock(ctx context.Context, info LockInfo, wait time.Duration) (unlock func() error, err error)
}
