package retry

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"snap/internal/backend"
	"snap/internal/backend/local"
)

// flaky wraps a backend and fails operations as told.
type flaky struct {
	backend.Backend
	mu sync.Mutex
	// failures to inject, per operation name: each entry is used once.
	fail map[string][]error
	// truncate makes the next Saves store only half the bytes.
	truncate int
	// cutLoads makes the next loads break after cutAfter bytes.
	cutLoads int
	cutAfter int
	// listBreaks makes the next Lists fail after two entries.
	listBreaks int
	// removeLost makes the next Remove delete the file and then fail.
	removeLost int
	calls      map[string]int
}

func newFlaky(t *testing.T) *flaky {
	return &flaky{Backend: local.New(t.TempDir()), fail: map[string][]error{}, calls: map[string]int{}}
}

func (f *flaky) next(op string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[op]++
	if errs := f.fail[op]; len(errs) > 0 {
		f.fail[op] = errs[1:]
		return errs[0]
	}
	return nil
}

func (f *flaky) take(n *int) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if *n > 0 {
		*n--
		return true
	}
	return false
}

func (f *flaky) Save(ctx context.Context, name string, rd io.Reader) error {
	if err := f.next("save"); err != nil {
		io.CopyN(io.Discard, rd, 1000) // read some: a retry must rewind
		return err
	}
	if f.take(&f.truncate) {
		data, _ := io.ReadAll(rd)
		return f.Backend.Save(ctx, name, bytes.NewReader(data[:len(data)/2]))
	}
	return f.Backend.Save(ctx, name, rd)
}

func (f *flaky) Load(ctx context.Context, name string, off, length int64) (io.ReadCloser, error) {
	if err := f.next("load"); err != nil {
		return nil, err
	}
	rc, err := f.Backend.Load(ctx, name, off, length)
	if err != nil || !f.take(&f.cutLoads) {
		return rc, err
	}
	return struct {
		io.Reader
		io.Closer
	}{io.MultiReader(io.LimitReader(rc, int64(f.cutAfter)), errReader{io.ErrUnexpectedEOF}), rc}, nil
}

func (f *flaky) Stat(ctx context.Context, name string) (backend.FileInfo, error) {
	if err := f.next("stat"); err != nil {
		return backend.FileInfo{}, err
	}
	return f.Backend.Stat(ctx, name)
}

func (f *flaky) List(ctx context.Context, dir string, fn func(backend.FileInfo) error) error {
	if err := f.next("list"); err != nil {
		return err
	}
	breaks := f.take(&f.listBreaks)
	n := 0
	return f.Backend.List(ctx, dir, func(fi backend.FileInfo) error {
		if breaks && n == 2 {
			return fmt.Errorf("list: %w", syscall.ECONNRESET)
		}
		n++
		return fn(fi)
	})
}

func (f *flaky) Remove(ctx context.Context, name string) error {
	if err := f.next("remove"); err != nil {
		return err
	}
	if f.take(&f.removeLost) {
		f.Backend.Remove(ctx, name)
		return &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}
	}
	return f.Backend.Remove(ctx, name)
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

type temporary struct{ msg string }

func (t temporary) Error() string   { return t.msg }
func (t temporary) Temporary() bool { return true }

type permanent struct{ err error }

func (p permanent) Error() string   { return "permanent: " + p.err.Error() }
func (p permanent) Unwrap() error   { return p.err }
func (p permanent) Permanent() bool { return true }

func fast(notes *[]string) Options {
	return Options{MaxElapsed: 2 * time.Second, InitialDelay: time.Millisecond, MaxDelay: 10 * time.Millisecond,
		Notify: func(m string) { *notes = append(*notes, m) }}
}

func randomBytes(t *testing.T, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func loadAll(t *testing.T, be backend.Backend, name string, off, length int64) []byte {
	t.Helper()
	rc, err := be.Load(context.Background(), name, off, length)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestIsTransient(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{fmt.Errorf("load x: %w", backend.ErrNotExist), false},
		{fmt.Errorf("save: %w", fs.ErrPermission), false},
		{context.Canceled, false},
		{&backend.LockedError{}, false},
		{errors.New("some other failure"), false},
		{fmt.Errorf("x: %w", syscall.ECONNRESET), true},
		{&net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}, true},
		{io.ErrUnexpectedEOF, true},
		{fmt.Errorf("save: %w", ErrSizeMismatch), true},
		{temporary{"server busy"}, true},
		{context.DeadlineExceeded, true},
		{&callbackError{syscall.ECONNRESET}, false},
		{permanent{io.EOF}, false},
	} {
		if got := IsTransient(tc.err); got != tc.want {
			t.Errorf("IsTransient(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

func TestSaveRetriesAndRewinds(t *testing.T) {
	f := newFlaky(t)
	var notes []string
	b := New(f, fast(&notes))
	data := randomBytes(t, 50_000)
	f.fail["save"] = []error{temporary{"busy"}, fmt.Errorf("write: %w", syscall.EPIPE)}
	if err := b.Save(context.Background(), "data/aa/x", bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	if got := loadAll(t, f.Backend, "data/aa/x", 0, 0); !bytes.Equal(got, data) {
		t.Fatal("content differs after retries")
	}
	if f.calls["save"] != 3 || len(notes) != 2 || !strings.Contains(notes[0], "save data/aa/x failed, retrying") {
		t.Fatalf("%d attempts, notes %q", f.calls["save"], notes)
	}

	// A source that cannot seek is buffered first, so it can be re-read.
	f.fail["save"] = []error{temporary{"busy"}}
	pr, pw := io.Pipe()
	go func() { pw.Write(data); pw.Close() }()
	if err := b.Save(context.Background(), "data/aa/pipe", struct{ io.Reader }{pr}); err != nil {
		t.Fatal(err)
	}
	if got := loadAll(t, f.Backend, "data/aa/pipe", 0, 0); !bytes.Equal(got, data) {
		t.Fatal("piped content differs after a retry")
	}

	// A reader positioned past its start: only the rest is saved.
	rd := bytes.NewReader(data)
	rd.Seek(1000, io.SeekStart)
	f.fail["save"] = []error{temporary{"busy"}}
	if err := b.Save(context.Background(), "data/aa/tail", rd); err != nil {
		t.Fatal(err)
	}
	if got := loadAll(t, f.Backend, "data/aa/tail", 0, 0); !bytes.Equal(got, data[1000:]) {
		t.Fatal("saved bytes before the reader's position")
	}
}

func TestSavePermanentError(t *testing.T) {
	f := newFlaky(t)
	var notes []string
	b := New(f, fast(&notes))
	f.fail["save"] = []error{fmt.Errorf("save: %w", fs.ErrPermission)}
	err := b.Save(context.Background(), "x", strings.NewReader("abc"))
	if !errors.Is(err, fs.ErrPermission) || f.calls["save"] != 1 {
		t.Fatalf("%v after %d attempts", err, f.calls["save"])
	}
}

func TestSaveVerifiesSize(t *testing.T) {
	f := newFlaky(t)
	var notes []string
	b := New(f, fast(&notes))
	data := randomBytes(t, 10_000)
	f.truncate = 1
	if err := b.Save(context.Background(), "x", bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	if got := loadAll(t, f.Backend, "x", 0, 0); !bytes.Equal(got, data) {
		t.Fatal("a truncated upload was not redone")
	}
	if len(notes) != 1 || !strings.Contains(notes[0], "stored 5000 bytes, sent 10000") {
		t.Fatalf("notes: %q", notes)
	}

	// Always truncated: give up within the time bound, saying why.
	f.truncate = 1 << 30
	start := time.Now()
	err := b.Save(context.Background(), "y", bytes.NewReader(data))
	if !errors.Is(err, ErrSizeMismatch) || !strings.Contains(err.Error(), "gave up after") {
		t.Fatalf("Save: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("took %s, bound is 2s", d)
	}
}

func TestNotExistNotRetried(t *testing.T) {
	f := newFlaky(t)
	var notes []string
	b := New(f, fast(&notes))
	if _, err := b.Load(context.Background(), "missing", 0, 0); !errors.Is(err, backend.ErrNotExist) {
		t.Fatal(err)
	}
	if _, err := b.Stat(context.Background(), "missing"); !errors.Is(err, backend.ErrNotExist) {
		t.Fatal(err)
	}
	if err := b.Remove(context.Background(), "missing"); !errors.Is(err, backend.ErrNotExist) {
		t.Fatal(err)
	}
	if f.calls["load"] != 1 || f.calls["stat"] != 1 || f.calls["remove"] != 1 || len(notes) != 0 {
		t.Fatalf("calls %v, notes %q", f.calls, notes)
	}
}

func TestLoadResumes(t *testing.T) {
	f := newFlaky(t)
	var notes []string
	b := New(f, fast(&notes))
	data := randomBytes(t, 100_000)
	if err := f.Backend.Save(context.Background(), "x", bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	f.fail["load"] = []error{temporary{"busy"}}
	f.cutLoads, f.cutAfter = 3, 7000
	if got := loadAll(t, b, "x", 0, 0); !bytes.Equal(got, data) {
		t.Fatalf("resumed whole load: %d bytes, differs", len(got))
	}
	f.cutLoads = 2
	if got := loadAll(t, b, "x", 30_000, 20_000); !bytes.Equal(got, data[30_000:50_000]) {
		t.Fatalf("resumed ranged load: %d bytes, differs", len(got))
	}
	if f.calls["load"] != 1+4+3 {
		t.Fatalf("%d loads", f.calls["load"])
	}
}

func TestListRestartsWithoutDuplicates(t *testing.T) {
	f := newFlaky(t)
	var notes []string
	b := New(f, fast(&notes))
	for i := range 5 {
		if err := f.Backend.Save(context.Background(), fmt.Sprintf("data/%d/x", i), strings.NewReader("x")); err != nil {
			t.Fatal(err)
		}
	}
	f.listBreaks = 2
	seen := map[string]int{}
	if err := b.List(context.Background(), "data", func(fi backend.FileInfo) error { seen[fi.Name]++; return nil }); err != nil {
		t.Fatal(err)
	}
	if len(seen) != 5 {
		t.Fatalf("listed %v", seen)
	}
	for name, n := range seen {
		if n != 1 {
			t.Errorf("%s listed %d times", name, n)
		}
	}
	// The callback's own errors end the listing at once, even transient-looking ones.
	calls := 0
	err := b.List(context.Background(), "data", func(backend.FileInfo) error { calls++; return io.ErrUnexpectedEOF })
	if !errors.Is(err, io.ErrUnexpectedEOF) || calls != 1 {
		t.Fatalf("%v after %d calls", err, calls)
	}
}

func TestRemoveLostAnswer(t *testing.T) {
	f := newFlaky(t)
	var notes []string
	b := New(f, fast(&notes))
	if err := f.Backend.Save(context.Background(), "x", strings.NewReader("x")); err != nil {
		t.Fatal(err)
	}
	f.removeLost = 1
	if err := b.Remove(context.Background(), "x"); err != nil {
		t.Fatalf("Remove whose answer was lost: %v", err)
	}
}

func TestContextStopsRetrying(t *testing.T) {
	f := newFlaky(t)
	b := New(f, Options{MaxElapsed: time.Minute, InitialDelay: 50 * time.Millisecond})
	for range 100 {
		f.fail["stat"] = append(f.fail["stat"], temporary{"busy"})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := b.Stat(ctx, "x"); err == nil {
		t.Fatal("Stat succeeded")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("retried for %s after the context ended", d)
	}
}
