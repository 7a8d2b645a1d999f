package objlock

import (
	"context"
	"encoding/json"
	"errors"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"snap/internal/backend"
	"snap/internal/backend/local"
)

func newLocker(t *testing.T, be backend.Backend) (*Locker, *[]string) {
	l := New(be)
	l.SettleTime = 30 * time.Millisecond
	l.PollInterval = 50 * time.Millisecond
	var mu sync.Mutex
	var notes []string
	l.Notify = func(msg string) {
		mu.Lock()
		notes = append(notes, msg)
		mu.Unlock()
	}
	return l, &notes
}

func info(host string, pid int) backend.LockInfo {
	return backend.LockInfo{Host: host, PID: pid, Command: "test", Start: time.Now()}
}

func writeLock(t *testing.T, be backend.Backend, name string, o Object) {
	t.Helper()
	data, _ := json.Marshal(o)
	if err := be.Save(context.Background(), "locks/"+name, strings.NewReader(string(data))); err != nil {
		t.Fatal(err)
	}
}

func lockNames(t *testing.T, be backend.Backend) []string {
	t.Helper()
	var names []string
	if err := be.List(context.Background(), "locks", func(fi backend.FileInfo) error {
		names = append(names, fi.Name)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return names
}

func TestExclusive(t *testing.T) {
	ctx := context.Background()
	be := local.New(t.TempDir())
	a, _ := newLocker(t, be)
	b, _ := newLocker(t, be)
	unlock, err := a.Lock(ctx, info("host-a", 100), 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = b.Lock(ctx, info("host-b", 200), 0)
	var le *backend.LockedError
	if !errors.As(err, &le) || !errors.Is(err, backend.ErrLocked) {
		t.Fatalf("second Lock: %v, want a LockedError", err)
	}
	if !le.Known || le.Holder.Host != "host-a" || le.Holder.PID != 100 || !strings.Contains(err.Error(), "host-a") {
		t.Fatalf("LockedError does not name the holder: %v", err)
	}
	// A reader goes on beside a writer.
	ur, err := b.LockRead(ctx, info("host-b", 200), 0)
	if err != nil {
		t.Fatalf("read lock beside a writer: %v", err)
	}
	ur()
	if err := unlock(); err != nil {
		t.Fatal(err)
	}
	if names := lockNames(t, be); len(names) != 0 {
		t.Fatalf("unlock left %v", names)
	}
	unlock, err = b.Lock(ctx, info("host-b", 200), 0)
	if err != nil {
		t.Fatalf("Lock after unlock: %v", err)
	}
	unlock()
}

func TestReadersAndPrune(t *testing.T) {
	ctx := context.Background()
	be := local.New(t.TempDir())
	a, _ := newLocker(t, be)
	u1, err := a.LockRead(ctx, info("h", 1), 0)
	if err != nil {
		t.Fatal(err)
	}
	u2, err := a.LockRead(ctx, info("h2", 2), 0)
	if err != nil {
		t.Fatalf("two readers: %v", err)
	}
	w, err := a.Lock(ctx, info("h3", 3), 0)
	if err != nil {
		t.Fatalf("writer beside readers: %v", err)
	}
	_, err = a.ExcludeReaders(ctx, info("h3", 3), 0)
	var le *backend.LockedError
	if !errors.As(err, &le) || !le.Readers || !strings.Contains(err.Error(), "being read by") {
		t.Fatalf("prune beside readers: %v, want a LockedError naming a reader", err)
	}
	u1()
	u2()
	release, err := a.ExcludeReaders(ctx, info("h3", 3), 0)
	if err != nil {
		t.Fatalf("prune after the readers left: %v", err)
	}
	if _, err := a.LockRead(ctx, info("h4", 4), 0); !errors.As(err, &le) || le.Readers || le.Holder.PID != 3 {
		t.Fatalf("reader during a prune: %v, want a LockedError naming the prune", err)
	}
	if _, err := a.Lock(ctx, info("h5", 5), 0); !errors.Is(err, backend.ErrLocked) {
		t.Fatalf("second writer: %v", err)
	}
	release()
	w()
	if names := lockNames(t, be); len(names) != 0 {
		t.Fatalf("unlock left %v", names)
	}
}

// Lock objects of an older snap carry no mode: its exclusive locks may
// prune, so readers wait for them; its shared ones read.
func TestOlderLockObjects(t *testing.T) {
	ctx := context.Background()
	be := local.New(t.TempDir())
	a, _ := newLocker(t, be)
	now := time.Now()
	writeLock(t, be, "0123456789abcdef0123456789abcdef", Object{Host: "old", PID: 7, Command: "prune", Start: now, Refreshed: now, Exclusive: true})
	if _, err := a.LockRead(ctx, info("h", 1), 0); !errors.Is(err, backend.ErrLocked) {
		t.Fatalf("reader beside an older snap's writer: %v", err)
	}
	be.Remove(ctx, "locks/0123456789abcdef0123456789abcdef")
	writeLock(t, be, "fedcba9876543210fedcba9876543210", Object{Host: "old", PID: 8, Command: "x", Start: now, Refreshed: now})
	if _, err := a.ExcludeReaders(ctx, info("h", 1), 0); !errors.Is(err, backend.ErrLocked) {
		t.Fatalf("prune beside an older snap's shared lock: %v", err)
	}
	w, err := a.Lock(ctx, info("h", 1), 0)
	if err != nil {
		t.Fatalf("writer beside an older snap's shared lock: %v", err)
	}
	w()
}

func TestOtherHostRecentBlocks(t *testing.T) {
	be := local.New(t.TempDir())
	start := time.Now().Add(-3 * time.Hour)
	writeLock(t, be, "other", Object{Host: "far-away", PID: 4242, Command: "create", Start: start,
		Refreshed: time.Now().Add(-2 * time.Minute), Exclusive: true})
	l, notes := newLocker(t, be)
	_, err := l.Lock(context.Background(), info("here", 1), 0)
	if !errors.Is(err, backend.ErrLocked) || !strings.Contains(err.Error(), "far-away") || !strings.Contains(err.Error(), "4242") {
		t.Fatalf("Lock: %v, want locked by far-away", err)
	}
	if len(*notes) != 0 {
		t.Fatalf("notices: %v", *notes)
	}
	if names := lockNames(t, be); len(names) != 1 {
		t.Fatalf("locks: %v", names)
	}
}

func TestStaleByAge(t *testing.T) {
	be := local.New(t.TempDir())
	writeLock(t, be, "old", Object{Host: "far-away", PID: 4242, Command: "create",
		Start: time.Now().Add(-time.Hour), Refreshed: time.Now().Add(-31 * time.Minute), Exclusive: true})
	l, notes := newLocker(t, be)
	unlock, err := l.Lock(context.Background(), info("here", 1), 0)
	if err != nil {
		t.Fatalf("Lock: %v", err)
	}
	defer unlock()
	if len(*notes) != 1 || !strings.Contains((*notes)[0], "stale") || !strings.Contains((*notes)[0], "far-away") {
		t.Fatalf("notices: %v", *notes)
	}
	for _, n := range lockNames(t, be) {
		if strings.HasSuffix(n, "/old") {
			t.Fatal("the stale lock is still there")
		}
	}
}

func TestStaleDeadPID(t *testing.T) {
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Skip("cannot run true:", err)
	}
	dead := cmd.Process.Pid
	be := local.New(t.TempDir())
	writeLock(t, be, "dead", Object{Host: "this-host", PID: dead, Command: "create",
		Start: time.Now(), Refreshed: time.Now(), Exclusive: true})
	l, notes := newLocker(t, be)
	unlock, err := l.Lock(context.Background(), info("this-host", 1), 0)
	if err != nil {
		t.Fatalf("Lock: %v", err)
	}
	unlock()
	if len(*notes) != 1 || !strings.Contains((*notes)[0], "no longer runs") {
		t.Fatalf("notices: %v", *notes)
	}

	// A live process of this host keeps its lock.
	live := exec.Command("sleep", "30")
	if err := live.Start(); err != nil {
		t.Skip(err)
	}
	defer func() { live.Process.Kill(); live.Wait() }()
	writeLock(t, be, "live", Object{Host: "this-host", PID: live.Process.Pid, Command: "create",
		Start: time.Now(), Refreshed: time.Now(), Exclusive: true})
	if _, err := l.Lock(context.Background(), info("this-host", 1), 0); !errors.Is(err, backend.ErrLocked) {
		t.Fatalf("lock of a live local process: %v", err)
	}
}

func TestUnreadableLockBlocks(t *testing.T) {
	be := local.New(t.TempDir())
	if err := be.Save(context.Background(), "locks/garbage", strings.NewReader("{not json")); err != nil {
		t.Fatal(err)
	}
	l, notes := newLocker(t, be)
	_, err := l.Lock(context.Background(), info("here", 1), 0)
	var le *backend.LockedError
	if !errors.As(err, &le) || le.Known {
		t.Fatalf("Lock: %v", err)
	}
	if len(*notes) != 1 || !strings.Contains((*notes)[0], "locks/garbage") {
		t.Fatalf("notices: %v", *notes)
	}
}

func TestWaitAndRefresh(t *testing.T) {
	ctx := context.Background()
	be := local.New(t.TempDir())
	a, notes := newLocker(t, be)
	a.RefreshInterval = 20 * time.Millisecond
	unlock, err := a.Lock(ctx, info("h", 1), 0)
	if err != nil {
		t.Fatal(err)
	}
	names := lockNames(t, be)
	if len(names) != 1 {
		t.Fatalf("locks: %v", names)
	}
	read := func() Object {
		data, err := backend.LoadAll(ctx, be, names[0])
		if err != nil {
			t.Fatal(err)
		}
		var o Object
		if err := json.Unmarshal(data, &o); err != nil {
			t.Fatal(err)
		}
		return o
	}
	first := read()
	if !first.Exclusive || first.Host != "h" || first.PID != 1 || first.Command != "test" {
		t.Fatalf("lock object: %+v", first)
	}
	time.Sleep(100 * time.Millisecond)
	if later := read(); !later.Refreshed.After(first.Refreshed) {
		t.Fatalf("not refreshed: %v then %v", first.Refreshed, later.Refreshed)
	}
	go func() {
		time.Sleep(200 * time.Millisecond)
		unlock()
	}()
	b, _ := newLocker(t, be)
	t0 := time.Now()
	unlock2, err := b.Lock(ctx, info("h2", 2), 5*time.Second)
	if err != nil {
		t.Fatalf("waiting Lock: %v", err)
	}
	if time.Since(t0) < 150*time.Millisecond {
		t.Fatal("got the lock while it was held")
	}
	unlock2()
	if len(*notes) != 0 {
		t.Fatalf("notices: %v", *notes)
	}

	// Waiting gives up with the time waited in the error.
	u, _ := a.Lock(ctx, info("h", 1), 0)
	defer u()
	_, err = b.Lock(ctx, info("h2", 2), 300*time.Millisecond)
	var le *backend.LockedError
	if !errors.As(err, &le) || le.Waited < 300*time.Millisecond {
		t.Fatalf("Lock with wait: %v", err)
	}
	cctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if _, err := b.Lock(cctx, info("h2", 2), time.Minute); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Lock with a cancelled context: %v", err)
	}
}

// TestRace lets lockers on "different hosts" compete; at no moment may two
// of them hold the exclusive lock.
func TestRace(t *testing.T) {
	be := local.New(t.TempDir())
	var holders, acquired atomic.Int32
	var wg sync.WaitGroup
	for i := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l, _ := newLocker(t, be)
			for range 3 {
				unlock, err := l.Lock(context.Background(), info("host-"+string(rune('a'+i)), 1000+i), 30*time.Second)
				if err != nil {
					t.Error(err)
					return
				}
				if n := holders.Add(1); n > 1 {
					t.Errorf("%d holders of the exclusive lock at once", n)
				}
				acquired.Add(1)
				time.Sleep(5 * time.Millisecond)
				holders.Add(-1)
				if err := unlock(); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	if acquired.Load() != 18 {
		t.Fatalf("%d acquisitions, want 18", acquired.Load())
	}
	if names := lockNames(t, be); len(names) != 0 {
		t.Fatalf("left over: %v", names)
	}
}
