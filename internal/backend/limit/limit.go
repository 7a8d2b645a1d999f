// Package limit caps the bandwidth a backend uses (--limit-upload,
// --limit-download), so a daily backup over a home uplink leaves room for
// everything else. Wrap a backend with New; a limit of 0 means none.
package limit

import (
	"context"
	"fmt"
	"io"
	"time"

	"golang.org/x/time/rate"

	"snap/internal/backend"
)

// Backend is a backend whose transfers are rate limited. Uploads and
// downloads have separate limits, shared by all concurrent transfers.
type Backend struct {
	backend.Backend
	up, down *rate.Limiter
}

// burst is the most bytes taken from a limiter at once: small enough that
// the rate holds over short intervals.
const burst = 64 << 10

// New limits be to up and down bytes per second (0: unlimited).
func New(be backend.Backend, up, down int64) backend.Backend {
	if up <= 0 && down <= 0 {
		return be
	}
	b := &Backend{Backend: be}
	if up > 0 {
		b.up = rate.NewLimiter(rate.Limit(up), burst)
	}
	if down > 0 {
		b.down = rate.NewLimiter(rate.Limit(down), burst)
	}
	return b
}

// Save uploads rd at the upload rate.
func (b *Backend) Save(ctx context.Context, name string, rd io.Reader) error {
	if b.up != nil {
		rd = &reader{ctx: ctx, r: rd, lim: b.up}
	}
	return b.Backend.Save(ctx, name, rd)
}

// Load downloads at the download rate.
func (b *Backend) Load(ctx context.Context, name string, offset, length int64) (io.ReadCloser, error) {
	rc, err := b.Backend.Load(ctx, name, offset, length)
	if err != nil || b.down == nil {
		return rc, err
	}
	return readCloser{&reader{ctx: ctx, r: rc, lim: b.down}, rc}, nil
}

// Unwrap returns the limited backend, for optional interfaces (Locker).
func (b *Backend) Unwrap() backend.Backend { return b.Backend }

type reader struct {
	ctx context.Context
	r   io.Reader
	lim *rate.Limiter
}

func (r *reader) Read(p []byte) (int, error) {
	if len(p) > burst {
		p = p[:burst]
	}
	n, err := r.r.Read(p)
	if n > 0 {
		if werr := r.lim.WaitN(r.ctx, n); werr != nil {
			return n, werr
		}
	}
	return n, err
}

type readCloser struct {
	io.Reader
	io.Closer
}

// Lock takes the wrapped backend's lock (see backend.Locker).
func (b *Backend) Lock(ctx context.Context, info backend.LockInfo, wait time.Duration) (func() error, error) {
	l, ok := b.Backend.(backend.Locker)
	if !ok {
		return nil, fmt.Errorf("lock %s: this backend cannot lock", b.Location())
	}
	return l.Lock(ctx, info, wait)
}

// Close closes the wrapped backend if it can be closed.
func (b *Backend) Close() error {
	if c, ok := b.Backend.(io.Closer); ok {
		return c.Close()
	}
	return nil
}
