// Package retry wraps a backend.Backend so that transient failures of a
// remote backend (a lost ssh connection, a reset TCP connection, a timeout,
// an HTTP 5xx or 429 answer) are retried with exponential backoff and jitter
// within a bounded time, and so that every upload is verified.
//
// Errors that retrying cannot fix are returned at once: a missing file
// (backend.ErrNotExist), a permission problem, a held lock, a cancelled
// context, and any error not known to be transient. Backends mark their own
// errors by giving them a method Temporary() bool that returns true (retry)
// or Permanent() bool that returns true (never retry, whatever they wrap).
//
// Save re-reads its source from the start for every attempt: a source that
// can be read at offsets (io.ReaderAt and io.Seeker, such as *os.File) is
// read in place, anything else is first copied to a temporary file. After each upload Save checks with Stat that the stored size equals
// the number of bytes sent; a mismatch (ErrSizeMismatch) is retried too. Load
// returns a reader that resumes at the right offset when a transfer breaks,
// and List reports each name once even when a listing is restarted.
//
// Entry points: New wraps a backend; IsTransient is the classification used.
package retry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"snap/internal/backend"
)

// Defaults for Options.
const (
	DefaultMaxElapsed   = 2 * time.Minute
	DefaultInitialDelay = 500 * time.Millisecond
	DefaultMaxDelay     = 20 * time.Second
)

// ErrSizeMismatch is wrapped by the error of a Save whose stored file does not
// have the size that was sent.
var ErrSizeMismatch = errors.New("stored size differs from the size sent")

// Options tune the wrapper. Zero values select the defaults.
type Options struct {
	// MaxElapsed bounds the time one operation spends retrying.
	MaxElapsed time.Duration
	// InitialDelay is the pause before the first retry; it doubles for
	// each further retry up to MaxDelay, and each pause is jittered.
	InitialDelay time.Duration
	MaxDelay     time.Duration
	// TempDir is where Save buffers sources that cannot seek; "" means the
	// system's temporary directory.
	TempDir string
	// Notify receives one line for each retry, for the command to print.
	Notify func(msg string)
}

// Backend retries the operations of another backend.
type Backend struct {
	be   backend.Backend
	opts Options
}

// New wraps be.
func New(be backend.Backend, opts Options) *Backend {
	if opts.MaxElapsed <= 0 {
		opts.MaxElapsed = DefaultMaxElapsed
	}
	if opts.InitialDelay <= 0 {
		opts.InitialDelay = DefaultInitialDelay
	}
	if opts.MaxDelay <= 0 {
		opts.MaxDelay = DefaultMaxDelay
	}
	return &Backend{be: be, opts: opts}
}

// Unwrap returns the wrapped backend.
func (b *Backend) Unwrap() backend.Backend { return b.be }

// Location returns the wrapped backend's location.
func (b *Backend) Location() string { return b.be.Location() }

// Close closes the wrapped backend if it has a Close method.
func (b *Backend) Close() error {
	if c, ok := b.be.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

// Lock takes the wrapped backend's lock (see backend.Locker).
func (b *Backend) Lock(ctx context.Context, info backend.LockInfo, wait time.Duration) (func() error, error) {
	l, ok := b.be.(backend.Locker)
	if !ok {
		return nil, fmt.Errorf("lock %s: this backend cannot lock", b.be.Location())
	}
	return l.Lock(ctx, info, wait)
}

// IsTransient reports whether err may go away when the operation is tried
// again.
func IsTransient(err error) bool {
	var cb *callbackError
	if errors.As(err, &cb) {
		return false // the caller's own error, not the backend's
	}
	var perm interface{ Permanent() bool }
	if errors.As(err, &perm) && perm.Permanent() {
		return false
	}
	switch {
	case err == nil,
		errors.Is(err, context.Canceled),
		errors.Is(err, backend.ErrNotExist),
		errors.Is(err, fs.ErrPermission),
		errors.Is(err, fs.ErrExist),
		errors.Is(err, backend.ErrLocked):
		return false
	case errors.Is(err, ErrSizeMismatch),
		errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, io.EOF),
		errors.Is(err, net.ErrClosed),            // a reused connection that the server had closed
		errors.Is(err, context.DeadlineExceeded): // a timeout inside the backend; the caller's own context is checked apart
		return true
	}
	var tmp interface{ Temporary() bool }
	if errors.As(err, &tmp) && tmp.Temporary() {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	for _, errno := range []syscall.Errno{syscall.ECONNRESET, syscall.ECONNREFUSED, syscall.ECONNABORTED,
		syscall.EPIPE, syscall.ETIMEDOUT, syscall.EHOSTUNREACH, syscall.ENETUNREACH, syscall.ENETDOWN} {
		if errors.Is(err, errno) {
			return true
		}
	}
	return false
}

// retry runs fn until it succeeds, fails permanently, ctx ends or the time
// budget is spent. attempt counts from 1.
func (b *Backend) retry(ctx context.Context, op string, fn func(attempt int) error) error {
	start := time.Now()
	delay := b.opts.InitialDelay
	for attempt := 1; ; attempt++ {
		err := fn(attempt)
		if err == nil || !IsTransient(err) {
			return err
		}
		if ctx.Err() != nil {
			return err
		}
		pause := delay/2 + rand.N(delay/2+1)
		elapsed := time.Since(start)
		if elapsed+pause > b.opts.MaxElapsed {
			return fmt.Errorf("%w (gave up after %d attempts in %s; check the connection to %s and try again)",
				err, attempt, elapsed.Round(time.Second), b.be.Location())
		}
		if b.opts.Notify != nil {
			b.opts.Notify(fmt.Sprintf("%s failed, retrying in %s: %v", op, pause.Round(time.Millisecond), err))
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(pause):
		}
		delay = min(2*delay, b.opts.MaxDelay)
	}
}

// Save stores rd under name, retrying with the source read again from its
// start, and checks the stored size.
func (b *Backend) Save(ctx context.Context, name string, rd io.Reader) error {
	src, err := rereadable(ctx, rd, b.opts.TempDir)
	if err != nil {
		return fmt.Errorf("save %s: %w", name, err)
	}
	defer src.close()
	return b.retry(ctx, "save "+name, func(int) error {
		// Each attempt reads through its own reader: an HTTP transport may
		// still be reading the body of a failed attempt when the next
		// one starts, and must not move the next attempt's position.
		ar := &attemptReader{r: io.NewSectionReader(src.r, src.start, src.size), n: src.size}
		err := b.be.Save(ctx, name, ar)
		ar.end()
		if err != nil {
			return err
		}
		fi, err := b.be.Stat(ctx, name)
		if errors.Is(err, backend.ErrNotExist) {
			return fmt.Errorf("save %s: %w: the file is missing right after the upload", name, ErrSizeMismatch)
		}
		if err != nil {
			return fmt.Errorf("save %s: check the upload: %w", name, err)
		}
		if fi.Size != src.size {
			return fmt.Errorf("save %s: %w: stored %d bytes, sent %d", name, ErrSizeMismatch, fi.Size, src.size)
		}
		return nil
	})
}

// source is a Save source that can be read again from its start.
type source struct {
	r     io.ReaderAt
	start int64
	size  int64
	tmp   *os.File // the buffer file, if one was needed
}

func (s *source) close() {
	if s.tmp != nil {
		s.tmp.Close()
		os.Remove(s.tmp.Name())
	}
}

// rereadable returns rd itself when it can be read at offsets (a file, a
// bytes.Reader), else a temporary copy of what is left in it.
func rereadable(ctx context.Context, rd io.Reader, tempDir string) (*source, error) {
	if ra, ok := rd.(interface {
		io.ReaderAt
		io.Seeker
	}); ok {
		start, err1 := ra.Seek(0, io.SeekCurrent)
		end, err2 := ra.Seek(0, io.SeekEnd)
		if err1 == nil && err2 == nil && end >= start {
			if _, err := ra.Seek(start, io.SeekStart); err != nil {
				return nil, fmt.Errorf("rewind the source: %w", err)
			}
			return &source{r: ra, start: start, size: end - start}, nil
		}
		if err1 == nil {
			ra.Seek(start, io.SeekStart)
		}
		// Not really seekable (a pipe): buffer it.
	}
	f, err := os.CreateTemp(tempDir, "snap-upload-")
	if err != nil {
		return nil, fmt.Errorf("buffer the upload: %w (set TMPDIR to a writable directory)", err)
	}
	n, err := io.Copy(f, backend.ContextReader(ctx, rd))
	if err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, fmt.Errorf("buffer the upload in %s: %w", f.Name(), err)
	}
	return &source{r: f, size: n, tmp: f}, nil
}

// attemptReader is the source as one attempt sees it. It tells backends
// how many bytes remain, so they can upload with a known size, and fails
// once its attempt is over.
type attemptReader struct {
	mu    sync.Mutex
	r     io.Reader
	n     int64
	ended bool
}

// errAttemptOver is returned to readers of an attempt that has ended.
var errAttemptOver = errors.New("upload attempt is over")

func (a *attemptReader) Read(p []byte) (int, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.ended {
		return 0, errAttemptOver
	}
	if a.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > a.n {
		p = p[:a.n]
	}
	n, err := a.r.Read(p)
	a.n -= int64(n)
	if err == io.EOF && a.n > 0 {
		err = fmt.Errorf("source ended %d bytes early: %w", a.n, io.ErrUnexpectedEOF)
	}
	return n, err
}

// Len returns the number of bytes left.
func (a *attemptReader) Len() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return int(a.n)
}

func (a *attemptReader) end() {
	a.mu.Lock()
	a.ended = true
	a.mu.Unlock()
}

// Load opens name, retrying the open, and returns a reader that resumes after
// transient errors during the transfer.
func (b *Backend) Load(ctx context.Context, name string, offset, length int64) (io.ReadCloser, error) {
	rc, err := b.open(ctx, name, offset, length)
	if err != nil {
		return nil, err
	}
	return &resumer{b: b, ctx: ctx, name: name, off: offset, length: length, rc: rc}, nil
}

func (b *Backend) open(ctx context.Context, name string, offset, length int64) (io.ReadCloser, error) {
	var rc io.ReadCloser
	err := b.retry(ctx, "load "+name, func(int) error {
		var err error
		rc, err = b.be.Load(ctx, name, offset, length)
		return err
	})
	return rc, err
}

// resumer reads name from off, reopening it after the bytes read so far when
// a transfer breaks.
type resumer struct {
	b      *Backend
	ctx    context.Context
	name   string
	off    int64
	length int64 // 0: to the end
	read   int64
	rc     io.ReadCloser
	err    error // a transient error held back until the next Read
	failed error // resuming failed: every later Read returns this
}

func (r *resumer) Read(p []byte) (int, error) {
	for {
		if r.failed != nil {
			return 0, r.failed
		}
		if r.err != nil {
			if err := r.reopen(); err != nil {
				r.failed = err
				return 0, err
			}
		}
		if r.rc == nil {
			return 0, io.EOF
		}
		n, err := r.rc.Read(p)
		r.read += int64(n)
		if err == nil || err == io.EOF || !IsTransient(err) || r.ctx.Err() != nil {
			return n, err
		}
		r.err = err
		if n > 0 {
			return n, nil
		}
	}
}

func (r *resumer) reopen() error {
	failed := r.err
	r.err = nil
	r.rc.Close()
	r.rc = nil
	if r.length > 0 && r.read >= r.length {
		return nil
	}
	length := int64(0)
	if r.length > 0 {
		length = r.length - r.read
	}
	if r.b.opts.Notify != nil {
		r.b.opts.Notify(fmt.Sprintf("load %s broke off after %d bytes, resuming: %v", r.name, r.read, failed))
	}
	rc, err := r.b.open(r.ctx, r.name, r.off+r.read, length)
	if err != nil {
		return fmt.Errorf("load %s: resume at byte %d after %v: %w", r.name, r.off+r.read, failed, err)
	}
	r.rc = rc
	return nil
}

func (r *resumer) Close() error {
	if r.rc == nil {
		return nil
	}
	return r.rc.Close()
}

// Stat returns the size of name.
func (b *Backend) Stat(ctx context.Context, name string) (backend.FileInfo, error) {
	var fi backend.FileInfo
	err := b.retry(ctx, "stat "+name, func(int) error {
		var err error
		fi, err = b.be.Stat(ctx, name)
		return err
	})
	return fi, err
}

// callbackError carries an error of List's fn through the wrapped backend;
// it is never retried.
type callbackError struct{ err error }

func (e *callbackError) Error() string   { return e.err.Error() }
func (e *callbackError) Unwrap() error   { return e.err }
func (e *callbackError) Temporary() bool { return false }

// List calls fn once for every file under dir, even when the listing has to
// be restarted.
func (b *Backend) List(ctx context.Context, dir string, fn func(backend.FileInfo) error) error {
	seen := make(map[string]struct{})
	return b.retry(ctx, "list "+dir, func(int) error {
		return b.be.List(ctx, dir, func(fi backend.FileInfo) error {
			if _, ok := seen[fi.Name]; ok {
				return nil
			}
			seen[fi.Name] = struct{}{}
			if err := fn(fi); err != nil {
				return &callbackError{err}
			}
			return nil
		})
	})
}

// Remove deletes name. When an attempt whose answer was lost did delete it,
// the retry finds nothing and that counts as success.
func (b *Backend) Remove(ctx context.Context, name string) error {
	return b.retry(ctx, "remove "+name, func(attempt int) error {
		err := b.be.Remove(ctx, name)
		if attempt > 1 && errors.Is(err, backend.ErrNotExist) {
			return nil
		}
		return err
	})
}
