// Package objlock locks a repository with lock objects, for backends that
// have no flock(2): sftp servers and S3 buckets.
//
// A holder writes locks/<random id>, a small JSON document naming its host,
// pid, command, start time, the time of its last refresh and whether it is
// exclusive, and rewrites it every RefreshInterval while it holds the lock.
// Another process lists locks/ to find conflicting holders: a writer's lock
// is exclusive and conflicts with every other writer's; a reader's lock is
// shared and conflicts only with a prune's, which a writer adds before it
// removes packs (see conflicts).
//
// A lock is stale, and removed with a notice, when its owner ran on this host
// and its pid no longer exists, or when it has not been refreshed for
// StaleAge (30 minutes by default).
//
// Two processes that check and write at the same moment are sorted out after
// the write: each lists locks/ again. The newer of two conflicting locks (by
// start time, then by id) removes itself and waits. The older one waits a
// moment (SettleTime) and looks again, so that a newer lock whose owner
// already decided it had won (because it listed before the older one was
// written) makes the older one back off instead; in the worst case both back
// off and try again later, never both hold the lock.
//
// Entry points: New returns a Locker for a backend (UseBackend routes it
// through a retry wrapper); Lock, LockRead and ExcludeReaders take a lock;
// the returned function releases it.
package objlock

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"path"
	"strings"
	"sync"
	"syscall"
	"time"

	"snap/internal/backend"
)

// Dir is the directory of lock objects in a repository.
const Dir = "locks"

// Default timings.
const (
	DefaultRefreshInterval = 5 * time.Minute
	DefaultStaleAge        = 30 * time.Minute
	DefaultSettleTime      = 2 * time.Second
	DefaultPollInterval    = 5 * time.Second
)

// maxLockSize bounds the lock objects this package reads.
const maxLockSize = 64 << 10

// Object is the JSON document stored for each lock.
type Object struct {
	Host      string    `json:"host"`
	PID       int       `json:"pid"`
	Command   string    `json:"command"`
	Start     time.Time `json:"start"`
	Refreshed time.Time `json:"refreshed"`
	Exclusive bool      `json:"exclusive"`
	// Mode is ModeWrite, ModeRead or ModePrune; empty in the objects of
	// older snaps, whose exclusive locks may prune and whose shared ones
	// read.
	Mode string `json:"mode,omitempty"`
}

// The modes of lock objects.
const (
	ModeWrite = "write" // exclusive: a writer that adds files and snapshot documents
	ModeRead  = "read"  // shared: a reader
	ModePrune = "prune" // shared: the holder of a write lock about to remove packs
)

// conflicts reports whether locks a and b exclude each other: two writers,
// or a reader and a prune.
func conflicts(a, b Object) bool {
	if a.Exclusive && b.Exclusive {
		return true
	}
	return reads(a) && prunes(b) || reads(b) && prunes(a)
}

// reads reports whether o is a reader's lock.
func reads(o Object) bool { return !o.Exclusive && o.Mode != ModePrune }

// prunes reports whether o's holder may remove packs: a prune, or a writer
// of an older snap, whose lock does not say.
func prunes(o Object) bool { return o.Mode == ModePrune || o.Exclusive && o.Mode == "" }

// Info returns the holder description used in error messages.
func (o Object) Info() backend.LockInfo {
	return backend.LockInfo{Host: o.Host, PID: o.PID, Command: o.Command, Start: o.Start}
}

// Locker takes locks by writing lock objects to a backend. Set the exported
// fields before the first Lock; the zero values select the defaults.
type Locker struct {
	be backend.Backend

	// Notify receives one line for each stale lock that is removed (and for
	// refresh problems), for the command to print. Nil discards them.
	Notify func(msg string)
	// RefreshInterval is how often a held lock is rewritten.
	RefreshInterval time.Duration
	// StaleAge is how long after its last refresh a lock counts as abandoned.
	StaleAge time.Duration
	// SettleTime is how long the older of two racing lockers waits before it
	// checks again whether the newer one backed off.
	SettleTime time.Duration
	// PollInterval is the longest pause between attempts while waiting for
	// another holder.
	PollInterval time.Duration
	// ProcessExists reports whether a pid of this host still runs; nil uses
	// kill(pid, 0).
	ProcessExists func(pid int) bool
	// Now returns the current time; nil uses time.Now.
	Now func() time.Time
}

// New returns a Locker that keeps its lock objects in be.
func New(be backend.Backend) *Locker { return &Locker{be: be} }

// UseBackend makes the Locker reach the same storage through be, typically a
// retry wrapper around the backend it was made for. Call it before the
// first Lock.
func (l *Locker) UseBackend(be backend.Backend) { l.be = be }

func (l *Locker) now() time.Time {
	if l.Now != nil {
		return l.Now()
	}
	return time.Now()
}

func (l *Locker) notify(format string, args ...any) {
	if l.Notify != nil {
		l.Notify(fmt.Sprintf(format, args...))
	}
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

func (l *Locker) processExists(pid int) bool {
	if l.ProcessExists != nil {
		return l.ProcessExists(pid)
	}
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return !errors.Is(err, syscall.ESRCH)
}

// Lock takes an exclusive lock for info, waiting up to wait for other
// holders. It implements backend.Locker.
func (l *Locker) Lock(ctx context.Context, info backend.LockInfo, wait time.Duration) (func() error, error) {
	return l.lock(ctx, info, wait, ModeWrite)
}

// LockRead takes a reader's lock: it excludes prunes only (see
// backend.ReadLocker).
func (l *Locker) LockRead(ctx context.Context, info backend.LockInfo, wait time.Duration) (func() error, error) {
	return l.lock(ctx, info, wait, ModeRead)
}

// ExcludeReaders takes a prune's lock beside the write lock its caller
// holds: it waits for readers' locks to go and keeps new readers out.
func (l *Locker) ExcludeReaders(ctx context.Context, info backend.LockInfo, wait time.Duration) (func() error, error) {
	return l.lock(ctx, info, wait, ModePrune)
}

// entry is one lock object found in the backend.
type entry struct {
	name string
	obj  Object
	ok   bool // false when the object could not be read or decoded
}

// older reports whether a sorts before b: earlier start, then smaller name.
func older(a, b entry) bool {
	if !a.obj.Start.Equal(b.obj.Start) {
		return a.obj.Start.Before(b.obj.Start)
	}
	return a.name < b.name
}

func (l *Locker) lock(ctx context.Context, info backend.LockInfo, wait time.Duration, mode string) (func() error, error) {
	if info.Start.IsZero() {
		info.Start = l.now()
	}
	var rnd [16]byte
	if _, err := crand.Read(rnd[:]); err != nil {
		return nil, fmt.Errorf("lock %s: random lock name: %w", l.be.Location(), err)
	}
	mine := entry{
		name: path.Join(Dir, hex.EncodeToString(rnd[:])),
		obj: Object{Host: info.Host, PID: info.PID, Command: info.Command, Start: info.Start,
			Exclusive: mode == ModeWrite, Mode: mode},
		ok: true,
	}
	start := time.Now()
	delay := 200 * time.Millisecond
	for {
		holder, err := l.try(ctx, &mine, info.Host)
		if err != nil {
			return nil, err
		}
		if holder == nil {
			return l.hold(mine), nil
		}
		waited := time.Since(start)
		if waited >= wait {
			le := &backend.LockedError{Locator: l.be.Location(), Waited: waited}
			if wait == 0 {
				le.Waited = 0
			}
			if holder.ok {
				le.Holder, le.Known = holder.obj.Info(), true
				le.Readers = reads(holder.obj) && prunes(mine.obj)
			} else {
				l.notify("lock object %s cannot be read; if no other snap is running, remove it", holder.name)
			}
			return nil, le
		}
		// Jitter keeps two racing lockers from meeting again in lockstep.
		pause := min(delay, wait-waited)
		pause = pause/2 + rand.N(pause/2+1)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(pause):
		}
		delay = min(2*delay, orDefault(l.PollInterval, DefaultPollInterval))
	}
}

// try makes one attempt. It returns nil, nil when the lock is now held by
// mine, or the entry that holds a conflicting lock.
func (l *Locker) try(ctx context.Context, mine *entry, host string) (*entry, error) {
	conflict, err := l.conflict(ctx, *mine, host)
	if err != nil || conflict != nil {
		return conflict, err
	}
	mine.obj.Refreshed = l.now()
	if err := l.write(ctx, *mine); err != nil {
		return nil, err
	}
	// Look again for lockers that checked at the same moment.
	conflict, err = l.conflict(ctx, *mine, host)
	if err == nil && conflict != nil && !older(*conflict, *mine) {
		// Every conflicting lock is newer: they back off when they see
		// ours. Give them a moment, then check that they did.
		select {
		case <-ctx.Done():
			err = ctx.Err()
		case <-time.After(orDefault(l.SettleTime, DefaultSettleTime)):
			conflict, err = l.conflict(ctx, *mine, host)
		}
	}
	if err != nil || conflict != nil {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		rerr := l.be.Remove(rctx, mine.name)
		cancel()
		if err == nil && rerr != nil && !errors.Is(rerr, backend.ErrNotExist) {
			err = fmt.Errorf("lock %s: back off from a concurrent locker: remove %s: %w; remove it by hand if it stays", l.be.Location(), mine.name, rerr)
		}
		return conflict, err
	}
	return nil, nil
}

// conflict lists the lock objects, removes stale ones and returns the oldest
// lock that conflicts with mine, or nil.
func (l *Locker) conflict(ctx context.Context, mine entry, host string) (*entry, error) {
	entries, err := l.list(ctx)
	if err != nil {
		return nil, err
	}
	var found *entry
	for i := range entries {
		e := &entries[i]
		if e.name == mine.name {
			continue
		}
		if e.ok {
			if why := l.stale(e.obj, host); why != "" {
				if err := l.be.Remove(ctx, e.name); err != nil && !errors.Is(err, backend.ErrNotExist) {
					return nil, fmt.Errorf("lock %s: remove stale lock %s: %w", l.be.Location(), e.name, err)
				}
				l.notify("removed stale lock %s of %s: %s", e.name, e.obj.Info(), why)
				continue
			}
			if !conflicts(mine.obj, e.obj) {
				continue
			}
		}
		// An unreadable lock object is treated as a conflicting lock of
		// an unknown holder: removing it could break someone's lock.
		if found == nil || older(*e, *found) {
			found = e
		}
	}
	return found, nil
}

// stale says why o is abandoned, or "" when it is not.
func (l *Locker) stale(o Object, host string) string {
	if o.Host == host && host != "" && !l.processExists(o.PID) {
		return fmt.Sprintf("process %d no longer runs on this host", o.PID)
	}
	last := o.Refreshed
	if last.IsZero() {
		last = o.Start
	}
	if age := l.now().Sub(last); age > orDefault(l.StaleAge, DefaultStaleAge) {
		return fmt.Sprintf("not refreshed for %s", age.Round(time.Minute))
	}
	return ""
}

// list reads every lock object.
func (l *Locker) list(ctx context.Context) ([]entry, error) {
	var names []string
	err := l.be.List(ctx, Dir, func(fi backend.FileInfo) error {
		if !strings.HasPrefix(path.Base(fi.Name), ".") {
			names = append(names, fi.Name)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("lock %s: list %s/: %w", l.be.Location(), Dir, err)
	}
	entries := make([]entry, 0, len(names))
	for _, name := range names {
		e, err := l.read(ctx, name)
		if errors.Is(err, backend.ErrNotExist) {
			continue // released while we listed
		}
		if err != nil {
			return nil, err
		}
		entries = append(entries, e)
	}
	return entries, nil
}

func (l *Locker) read(ctx context.Context, name string) (entry, error) {
	rc, err := l.be.Load(ctx, name, 0, 0)
	if err != nil {
		return entry{}, fmt.Errorf("lock %s: read %s: %w", l.be.Location(), name, err)
	}
	data, err := io.ReadAll(io.LimitReader(rc, maxLockSize+1))
	rc.Close()
	if err != nil {
		return entry{}, fmt.Errorf("lock %s: read %s: %w", l.be.Location(), name, err)
	}
	var o Object
	if len(data) > maxLockSize || json.Unmarshal(data, &o) != nil {
		return entry{name: name}, nil
	}
	return entry{name: name, obj: o, ok: true}, nil
}

func (l *Locker) write(ctx context.Context, e entry) error {
	data, err := json.Marshal(e.obj)
	if err != nil {
		return err
	}
	if err := l.be.Save(ctx, e.name, strings.NewReader(string(data))); err != nil {
		return fmt.Errorf("lock %s: write %s: %w", l.be.Location(), e.name, err)
	}
	return nil
}

// hold starts the refresher and returns the unlock function.
func (l *Locker) hold(mine entry) func() error {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		l.refresh(ctx, mine)
	}()
	var once sync.Once
	var err error
	return func() error {
		once.Do(func() {
			cancel()
			wg.Wait()
			rctx, rcancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer rcancel()
			if rerr := l.be.Remove(rctx, mine.name); rerr != nil && !errors.Is(rerr, backend.ErrNotExist) {
				err = fmt.Errorf("unlock %s: remove %s: %w; remove it by hand, or it expires %s after its last refresh",
					l.be.Location(), mine.name, rerr, orDefault(l.StaleAge, DefaultStaleAge))
			}
		})
		return err
	}
}

// refresh rewrites the lock object until ctx is cancelled.
func (l *Locker) refresh(ctx context.Context, mine entry) {
	t := time.NewTicker(orDefault(l.RefreshInterval, DefaultRefreshInterval))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		mine.obj.Refreshed = l.now()
		if err := l.write(ctx, mine); err != nil && ctx.Err() == nil {
			l.notify("could not refresh lock %s (will try again): %v", mine.name, err)
		}
	}
}
