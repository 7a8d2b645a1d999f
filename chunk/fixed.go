package chunk

import (
	"errors"
	"io"
)

// Fixed splits a stream at fixed offsets: a first piece of First bytes
// (skipped when 0), then pieces of Size bytes. It suits data whose changes
// are aligned, such as eCryptfs ciphertext, where an edit re-encrypts whole
// 4 KiB extents and content-defined cuts would find nothing to align on.
type Fixed struct {
	r     io.Reader
	first int
	size  int
}

// NewFixed returns a splitter over r.
func NewFixed(r io.Reader, first, size int) *Fixed {
	return &Fixed{r: r, first: first, size: size}
}

// Next returns the next piece in buf (which needs capacity for the larger
// of first and size), or io.EOF after the last one.
func (f *Fixed) Next(buf []byte) ([]byte, error) {
	n := f.size
	if f.first > 0 {
		n, f.first = f.first, 0
	}
	if cap(buf) < n {
		buf = make([]byte, n)
	}
	k, err := io.ReadFull(f.r, buf[:n])
	switch {
	case k > 0 && (err == nil || errors.Is(err, io.ErrUnexpectedEOF)):
		return buf[:k], nil
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return nil, io.EOF
	}
	return nil, err
}
