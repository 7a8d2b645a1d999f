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
	s := fmt.Sprintf("pid %d on %s (%q", l.PID, l.Host, l.Command)
	if !l.Start.IsZero() {
		s += ", since " + l.Start.Local().Format("2006-01-02 15:04:05")
	}
	return s + ")"
}

// LockedError says who holds a lock. It matches ErrLocked with errors.Is.
type LockedError struct {
	Holder  LockInfo
	Known   bool // false when the holder could not be read
	Waited  time.Duration
	Locator string
	// Readers is set when the lock was wanted to remove packs and readers
	// hold it (Holder is one of them, More how many others there are).
	Readers bool
	More    int
}

func (e *LockedError) Error() string {
	who := "another process"
	if e.Known {
		who = e.Holder.String()
	}
	if e.More > 0 {
		who += fmt.Sprintf(" and %d more", e.More)
	}
	msg := fmt.Sprintf("repository %s is locked by %s", e.Locator, who)
	if e.Readers {
		msg = fmt.Sprintf("repository %s is being read by %s, and removing packs could break that read", e.Locator, who)
	}
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

// ReadLocker is implemented by backends that keep readers and pack removal
// apart. A reader (restore, check, ls, …) holds a read lock while it
// reads; a writer that is about to remove packs (prune) first excludes
// readers, which waits for the read locks to go and keeps new readers out
// until it lets go. Writers that only add files do neither: readers go on
// beside a backup. Both return ErrLocked (as *LockedError) after waiting
// up to wait.
type ReadLocker interface {
	LockRead(ctx context.Context, info LockInfo, wait time.Duration) (unlock func() error, err error)
	// ExcludeReaders is called by the holder of the write lock.
	ExcludeReaders(ctx context.Context, info LockInfo, wait time.Duration) (release func() error, err error)
}

// Unwrapper is implemented by backends that wrap another (retries, rate
// limits).
type Unwrapper interface {
	Unwrap() Backend
}

// AsReadLocker returns the ReadLocker of be or of the backend it wraps.
func AsReadLocker(be Backend) (ReadLocker, bool) {
	for {
		if l, ok := be.(ReadLocker); ok {
			return l, true
		}
		u, ok := be.(Unwrapper)
		if !ok {
			return nil, false
		}
		be = u.Unwrap()
	}
}
