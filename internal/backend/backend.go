// Package backend defines the storage interface a repository lives on.
//
// A Backend stores named files ("config", "data/ab/ab12…", "snapshots/…") and
// reads them back, whole or by range. Names use '/' on every backend. The
// local directory backend is in package local; sftp and S3 implement the
// same interface.
package backend

import (
	"context"
	"errors"
	"io"
	"io/fs"
)

// ErrNotExist is wrapped by errors for names that do not exist, so callers
// can test with errors.Is(err, backend.ErrNotExist).
var ErrNotExist = fs.ErrNotExist

// FileInfo describes one stored file.
type FileInfo struct {
	Name string // full name, e.g. "data/ab/ab12…"
	Size int64
}

// Backend is the storage of a repository. Implementations must be safe for
// concurrent use.
type Backend interface {
	// Save stores rd under name atomically: a reader sees the whole file or
	// nothing, and a crash never leaves a partial file under name. The file is
	// durable when Save returns.
	Save(ctx context.Context, name string, rd io.Reader) error
	// Load opens name for reading from offset; length 0 means to the end.
	Load(ctx context.Context, name string, offset, length int64) (io.ReadCloser, error)
	// Stat returns the size of name.
	Stat(ctx context.Context, name string) (FileInfo, error)
	// List calls fn for every file under the directory dir (recursively),
	// in no particular order.
	List(ctx context.Context, dir string, fn func(FileInfo) error) error
	// Remove deletes name. Removing a missing name returns an error wrapping
	// ErrNotExist.
	Remove(ctx context.Context, name string) error
	// Location describes the backend for messages, e.g. "/srv/repo".
	Location() string
}

// NameLister is implemented by backends that list names more cheaply than
// List, which also reports sizes (the local backend reads directories
// instead of also stating every file). The names and their order are List's.
type NameLister interface {
	ListNames(ctx context.Context, dir string, fn func(name string) error) error
}

// FileMover is implemented by backends that can take a finished local file
// without copying it (the local backend renames it). The file must live in
// the directory returned by TempDir.
type FileMover interface {
	TempDir() string
	MoveFile(ctx context.Context, name, path string) error
}

// LoadAll reads a whole file.
func LoadAll(ctx context.Context, be Backend, name string) ([]byte, error) {
	rc, err := be.Load(ctx, name, 0, 0)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

// ReaderAt adapts ranged loads of one file to io.ReaderAt.
type ReaderAt struct {
	Ctx     context.Context
	Backend Backend
	Name    string
}

// ReadAt reads len(p) bytes at off.
func (r ReaderAt) ReadAt(p []byte, off int64) (int, error) {
	rc, err := r.Backend.Load(r.Ctx, r.Name, off, int64(len(p)))
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	n, err := io.ReadFull(rc, p)
	if errors.Is(err, io.ErrUnexpectedEOF) {
		err = io.EOF
	}
	return n, err
}

// ContextReader returns a reader that stops with ctx's error once ctx is
// done, so a long copy can be interrupted between reads.
func ContextReader(ctx context.Context, r io.Reader) io.Reader { return ctxReader{ctx, r} }

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
