// Package repo is a snap repository on a storage backend: its config, packs,
// blobs and snapshot documents.
//
// Start with Init or Open. Readers call LoadBlob (verified against the blob ID)
// and the snapshot file functions. A writer takes the write lock with Lock,
// stores blobs with SaveBlob (or Reserve + StoreBlob from a pipeline), and calls
// Flush before it writes a snapshot document that references them, so the
// document never names a blob that is not durable and indexed. The index in
// index.db is a cache of the pack trailers; RebuildIndex recreates it.
package repo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sync"

	"snap/chunk"
	"snap/index"
	"snap/internal/backend"
	"snap/repo/pack"
)

// ErrNoRepository is wrapped by Open's error when there is no repository at
// the location.
var ErrNoRepository = errors.New("no repository")

// ErrAlreadyExists is returned by Init for a location that holds a repository.
var ErrAlreadyExists = errors.New("repository already exists")

// Options tune a repository handle.
type Options struct {
	// IndexPath is where index.db lives (in the repository for local
	// backends, in the cache directory for remote ones).
	IndexPath string
	// Compression overrides the config's mode for blobs written by this handle.
	Compression string
	// PackSize is the target pack size; 0 means DefaultPackSize.
	PackSize int64
	// TreeCacheDir, if set, keeps a local copy of every tree blob read, so
	// browsing a remote repository does not fetch the same trees again.
	TreeCacheDir string
	// SnapshotCacheDir, if set, keeps a local copy of every snapshot
	// document read or written: a backup reads all of them to find its
	// parent, a round trip each on a remote repository.
	SnapshotCacheDir string
	// Cache says the index is a local cache of a remote repository, which
	// other machines change: taking the write lock then also drops packs
	// they pruned (see SyncCache).
	Cache bool
}

// DefaultPackSize is the size at which a pack is finished.
const DefaultPackSize = 16 << 20

// Repository is an open repository. It is safe for concurrent use.
type Repository struct {
	be   backend.Backend
	cfg  Config
	idx  *index.Index
	opts Options
	comp *compressor

	trees, snapshots fileCache

	mu       sync.Mutex
	reserved map[chunk.ID]struct{} // blobs saved (or being saved) by this handle
	packer   *packer
	bufs     sync.Pool // compression output buffers

	// deferIndex makes finished packs wait in deferred instead of being
	// indexed at once, so prune can swap old packs for new ones in one
	// index transaction.
	deferIndex    bool
	deferred      []index.PackInfo
	deferredBlobs [][]pack.Blob
}

// Init creates a repository with cfg at be. It fails with ErrAlreadyExists if
// a config is already there.
func Init(ctx context.Context, be backend.Backend, cfg Config, opts Options) (*Repository, error) {
	if _, err := be.Stat(ctx, "config"); err == nil {
		return nil, fmt.Errorf("init %s: %w", be.Location(), ErrAlreadyExists)
	} else if !errors.Is(err, backend.ErrNotExist) {
		return nil, fmt.Errorf("init %s: %w", be.Location(), err)
	}
	data, err := cfg.Marshal()
	if err != nil {
		return nil, err
	}
	if err := be.Save(ctx, "config", bytes.NewReader(data)); err != nil {
		return nil, fmt.Errorf("init %s: %w", be.Location(), err)
	}
	return open(ctx, be, cfg, opts)
}

// Open opens the repository at be.
func Open(ctx context.Context, be backend.Backend, opts Options) (*Repository, error) {
	data, err := backend.LoadAll(ctx, be, "config")
	if errors.Is(err, backend.ErrNotExist) {
		return nil, fmt.Errorf("%w at %s; create one with 'snap init -r %s'", ErrNoRepository, be.Location(), be.Location())
	}
	if err != nil {
		return nil, fmt.Errorf("open repository %s: %w", be.Location(), err)
	}
	cfg, err := ParseConfig(data)
	if err != nil {
		return nil, fmt.Errorf("open repository %s: %w", be.Location(), err)
	}
	return open(ctx, be, cfg, opts)
}

func open(ctx context.Context, be backend.Backend, cfg Config, opts Options) (*Repository, error) {
	mode := cfg.Compression
	if opts.Compression != "" {
		m, err := ParseCompression(opts.Compression)
		if err != nil {
			return nil, err
		}
		mode = m
	}
	if opts.PackSize <= 0 {
		opts.PackSize = DefaultPackSize
	}
	if opts.IndexPath == "" {
		return nil, errors.New("open repository: no index path given")
	}
	idx, err := index.Open(opts.IndexPath, cfg.ID)
	if err != nil {
		return nil, fmt.Errorf("open repository %s: %w", be.Location(), err)
	}
	return &Repository{
		be:        be,
		cfg:       cfg,
		idx:       idx,
		opts:      opts,
		comp:      newCompressor(mode),
		reserved:  make(map[chunk.ID]struct{}),
		bufs:      sync.Pool{New: func() any { b := make([]byte, 0, 1<<20); return &b }},
		trees:     fileCache{dir: opts.TreeCacheDir, fanout: true},
		snapshots: fileCache{dir: opts.SnapshotCacheDir},
	}, nil
}

// BypassCaches makes this handle read every tree blob and snapshot document
// from the repository itself, never from the local caches: check and repair
// must see the repository's bytes, which a good cached copy would hide. Call
// it before the handle is used.
func (r *Repository) BypassCaches() { r.trees, r.snapshots = fileCache{}, fileCache{} }

// Config returns the repository configuration.
func (r *Repository) Config() Config { return r.cfg }

// Backend returns the storage backend.
func (r *Repository) Backend() backend.Backend { return r.be }

// Index returns the blob index.
func (r *Repository) Index() *index.Index { return r.idx }

// Close releases the index. It does not flush: call Flush first.
func (r *Repository) Close() error { return r.idx.Close() }

// PackName returns the backend name of a pack.
func PackName(id chunk.ID) string {
	s := id.String()
	return path.Join("data", s[:2], s)
}

// LoadBlob returns the raw bytes of a blob, verified against its ID.
func (r *Repository) LoadBlob(ctx context.Context, t pack.BlobType, id chunk.ID) ([]byte, error) {
	if t == pack.TreeBlob {
		if data, ok := r.trees.get(id); ok {
			return data, nil
		}
	}
	loc, ok, err := r.idx.Lookup(id)
	if err != nil {
		return nil, fmt.Errorf("load %s blob %s: %w", t, id.Short(), err)
	}
	if !ok {
		return nil, fmt.Errorf("load %s blob %s: %w", t, id.Short(), ErrBlobMissing)
	}
	return r.LoadBlobAt(ctx, loc)
}

// ErrBlobMissing is wrapped by errors for a blob that is not in the index.
var ErrBlobMissing = errors.New("blob not in the index; run 'snap repair index', then 'snap check'")

// ErrBlobCorrupt is wrapped by errors for a blob whose bytes do not verify.
var ErrBlobCorrupt = errors.New("blob damaged; run 'snap check --read-data'")

// LoadBlobAt reads the blob at a known location and verifies it.
func (r *Repository) LoadBlobAt(ctx context.Context, loc index.Location) ([]byte, error) {
	if loc.Type == pack.TreeBlob {
		// A backup's walk reads the parent's trees here: on a remote
		// repository a round trip each, unless cached.
		if data, ok := r.trees.get(loc.ID); ok {
			return data, nil
		}
	}
	stored := make([]byte, loc.Length)
	if err := r.readPack(ctx, loc.Pack, int64(loc.Offset), stored); err != nil {
		return nil, fmt.Errorf("load %s blob %s from pack %s: %w", loc.Type, loc.ID.Short(), loc.Pack.Short(), err)
	}
	raw, err := r.decodeBlob(loc.Pack, loc.Blob, stored)
	if err == nil && loc.Type == pack.TreeBlob {
		r.trees.put(loc.ID, raw)
	}
	return raw, err
}

// BlobBuffer holds the buffers that LoadBlobInto reuses from call to call.
// The zero value is ready to use; one goroutine uses it at a time.
type BlobBuffer struct{ stored, raw []byte }

// LoadBlobInto is LoadBlobAt reading and decoding into buf, whose buffers
// grow as needed and are reused: the bytes returned are valid only until
// the next call with the same buf. A restore loads every blob of a
// snapshot; a new buffer for each made a sixth of its CPU time allocation
// and garbage collection.
func (r *Repository) LoadBlobInto(ctx context.Context, loc index.Location, buf *BlobBuffer) ([]byte, error) {
	if cap(buf.stored) < int(loc.Length) {
		buf.stored = make([]byte, loc.Length)
	}
	stored := buf.stored[:loc.Length]
	if err := r.readPack(ctx, loc.Pack, int64(loc.Offset), stored); err != nil {
		return nil, fmt.Errorf("load %s blob %s from pack %s: %w", loc.Type, loc.ID.Short(), loc.Pack.Short(), err)
	}
	if cap(buf.raw) < int(loc.RawLength) && loc.Compression == pack.Zstd {
		buf.raw = make([]byte, 0, loc.RawLength)
	}
	return r.decodeBlobTo(loc.Pack, loc.Blob, stored, buf.raw[:0])
}

func (r *Repository) readPack(ctx context.Context, id chunk.ID, off int64, buf []byte) error {
	rc, err := r.be.Load(ctx, PackName(id), off, int64(len(buf)))
	if err != nil {
		return err
	}
	defer rc.Close()
	if _, err := io.ReadFull(rc, buf); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return fmt.Errorf("pack is shorter than the index says: %w", ErrBlobCorrupt)
		}
		return err
	}
	return nil
}

// decodeBlob checks the stored bytes of b, decompresses them and checks the ID.
func (r *Repository) decodeBlob(packID chunk.ID, b pack.Blob, stored []byte) ([]byte, error) {
	return r.decodeBlobTo(packID, b, stored, nil)
}

// decodeBlobTo is decodeBlob decompressing into dst's capacity when it
// suffices.
func (r *Repository) decodeBlobTo(packID chunk.ID, b pack.Blob, stored, dst []byte) ([]byte, error) {
	fail := func(what string) error {
		return fmt.Errorf("%s blob %s in pack %s: %s: %w", b.Type, b.ID.Short(), packID.Short(), what, ErrBlobCorrupt)
	}
	if err := pack.VerifyBlob(b, stored); err != nil {
		return nil, fail("checksum mismatch")
	}
	raw := stored
	if b.Compression == pack.Zstd {
		dec, err := r.comp.decoder()
		if err != nil {
			return nil, err
		}
		if cap(dst) < int(b.RawLength) {
			dst = make([]byte, 0, b.RawLength)
		}
		raw, err = dec.DecodeAll(stored, dst[:0])
		if err != nil {
			return nil, fail("cannot decompress: " + err.Error())
		}
	}
	if len(raw) != int(b.RawLength) {
		return nil, fail(fmt.Sprintf("%d bytes, want %d", len(raw), b.RawLength))
	}
	if chunk.Hash(raw) != b.ID {
		return nil, fail("SHA-256 mismatch")
	}
	return raw, nil
}

// removeTemp deletes leftovers of killed writers in the backend's temp dir.
// Only a holder of the write lock may call it.
func (r *Repository) removeTemp() {
	if m, ok := r.be.(backend.FileMover); ok {
		entries, _ := os.ReadDir(m.TempDir())
		for _, e := range entries {
			os.Remove(filepath.Join(m.TempDir(), e.Name()))
		}
	}
}
