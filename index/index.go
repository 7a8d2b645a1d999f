// Package index maps blob IDs to their location in the repository's packs.
//
// The index lives in index.db, a bbolt database that caches the pack
// trailers (see "Index (index.db)" in docs/FORMAT.md). It can be deleted and
// rebuilt from the packs at any time, so every inconsistency found in it is
// reported as ErrCorrupt, whose remedy is 'snap repair index'. This package
// is the only one that imports bbolt.
//
// Open checks or creates the file; Lookup and LookupMany find blobs;
// AddPack records a pack once it is durable; Packs, Blobs and Stats list the
// contents; AddPacks, RemovePacks and ReplacePacks serve rebuild and prune.
//
// Several processes use index.db at once: one writer (a backup) and any
// number of readers (restore, ls). bbolt locks the file with flock for as
// long as a *bolt.DB is open, exclusively when open read-write, so an Index
// keeps the file open across calls only briefly: the calls of 20 ms share
// one read-only handle (see shareFor), and each write opens the file, runs
// one transaction and closes it again. A writer that looks up many blobs calls
// Hold, which keeps a read-only handle open between calls; every write then
// closes that handle, commits through a read-write handle and reopens the
// read-only one, and the process's lookups meanwhile read through the
// read-write handle. bbolt's own wait for the lock is unfair polling, under which
// busy readers can starve a writer; on Linux, record locks on two bytes past
// the end of the file make processes take turns (see lockFile), so readers
// wait at most for one commit, and the writer for the read transactions
// already running.
//
// Values in the meta bucket: version is a u32 (little-endian, like all
// values), repository the repository ID as given to Open, next_pack the u32
// number the next added pack gets; pack numbers start at 0 and are not
// reused; generation 16 random bytes, drawn anew whenever a pack is removed
// (see Generation). A blob value is the 30 bytes of the fields FORMAT.md
// lists.
package index

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"

	"snap/chunk"
	"snap/repo/pack"
)

// Version is the schema version recorded in the meta bucket.
const Version = 1

// DefaultLockTimeout is how long a call waits for another process to release
// the file lock before it fails with ErrLocked. It is long because a commit
// may legitimately take a while on a slow disk, and short enough that a
// stuck process is reported rather than waited for forever.
const DefaultLockTimeout = 3 * time.Minute

// fileMode is used when creating index.db.
const fileMode = 0o600

var (
	// ErrCorrupt is wrapped by every error reporting an index file that
	// cannot be read or contradicts itself.
	ErrCorrupt = errors.New("corrupt index; run 'snap repair index' to rebuild it from the packs")

	// ErrOtherRepository is returned by Open for an index.db written for
	// another repository, as happens when a repository directory is copied
	// over another.
	ErrOtherRepository = errors.New("index belongs to another repository; run 'snap repair index' to rebuild it")

	// ErrLocked is returned when another process kept index.db locked for
	// longer than the lock timeout.
	ErrLocked = errors.New("index locked by another process")

	// ErrClosed is returned by every method called after Close.
	ErrClosed = errors.New("index closed")
)

// Names in the database.
var (
	bucketPacks    = []byte("packs")
	bucketPackNums = []byte("packnums")
	bucketBlobs    = []byte("blobs")
	bucketMeta     = []byte("meta")
	bucketDups     = []byte("dups")

	keyVersion    = []byte("version")
	keyRepository = []byte("repository")
	keyNextPack   = []byte("next_pack")
	keyGeneration = []byte("generation")
	keyAdding     = []byte("adding")
)

// Sizes of the stored values.
const (
	packValueSize = 4 + 8 + 4                 // number, size, count
	blobValueSize = 1 + 1 + 4 + 8 + 4 + 4 + 8 // type, compression, pack number, offset, stored, raw, xxh64
)

// Location says where a blob is stored: the pack and the pack's trailer entry
// for the blob.
type Location struct {
	Pack chunk.ID
	pack.Blob
}

// PackInfo describes one indexed pack.
type PackInfo struct {
	ID    chunk.ID
	Size  int64 // bytes
	Count int   // blobs in the pack's trailer
}

// Index is an open index.db. Its methods are safe for concurrent use by the
// goroutines of one process. Callbacks passed to its methods run inside a
// transaction and must not call methods of the same Index.
type Index struct {
	path    string
	timeout time.Duration

	// wmu lets one write at a time run (see write), and keeps Hold,
	// Release and Close from changing handles under it.
	wmu sync.Mutex
	// mu orders this process's own use of the handles: views take it for
	// reading; opening and closing handles takes it exclusively, because a
	// write must close the held handle (our own read handles would
	// otherwise block our exclusive flock).
	mu   sync.RWMutex
	lent *bolt.DB // the read-write handle while a write runs, for views
	// lentLarge is whether index.db was larger than tune.dropAbove when
	// lent was opened (see touched).
	lentLarge bool
	held      *bolt.DB // open read-only between calls while holding, else nil
	// heldMap is held's mapping, heldLarge whether index.db was larger
	// than tune.dropAbove when held was opened, and heldKeys the keys
	// looked up through held or lent (see touched and mapping.go).
	heldMap   mapping
	heldLarge bool
	heldKeys  atomic.Int64
	tune      tuning
	drops     atomic.Int64 // mappings dropped, for tests
	// afterBatch, if set, is called after each transaction of a batched
	// add with the number of blobs written so far; tests kill the process
	// there, or fail the add.
	afterBatch func(done int) error
	holding    bool // between Hold and Release
	closed     bool

	smu      sync.Mutex    // guards shared and its fields
	shared   *sharedDB     // lent to views when not holding
	shareFor time.Duration // the constant of that name; tests change it
}

// Open opens the index at path for the repository with ID repoID, creating
// the file and its buckets if they do not exist. It refuses an index written
// for another repository or with another schema version. The file is closed
// again before Open returns.
func Open(path string, repoID string) (*Index, error) {
	if repoID == "" {
		return nil, fmt.Errorf("open index %s: empty repository ID", path)
	}
	ix := &Index{path: path, timeout: DefaultLockTimeout, tune: defaultTuning, shareFor: shareFor}
	if err := ix.init(repoID); err != nil {
		return nil, err
	}
	return ix, nil
}

func (ix *Index) init(repoID string) error {
	// An index almost always exists already. Check it read-only: opening it
	// read-write would wait for a running backup to release its held handle.
	fi, err := os.Stat(ix.path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("open index: %w", err)
	}
	if err == nil && fi.Size() > 0 {
		ready, adding := false, false
		err := ix.view(func(tx *bolt.Tx) (err error) {
			ready, err = ix.checkMeta(tx, repoID)
			adding = ready && tx.Bucket(bucketMeta).Get(keyAdding) != nil
			return err
		})
		if err == nil && adding {
			err = ix.recoverAdding()
			if errors.Is(err, fs.ErrPermission) {
				err = nil // a reader of a repository it cannot write: the index still answers
			}
		}
		if err != nil || ready {
			return err
		}
	}
	// The file is new or empty. Two processes may race to create it; the
	// read-write open serializes them and the loser finds the meta bucket.
	return ix.update(func(tx *bolt.Tx) error {
		ready, err := ix.checkMeta(tx, repoID)
		if err != nil || ready {
			return err
		}
		for _, name := range [][]byte{bucketPacks, bucketPackNums, bucketBlobs, bucketMeta} {
			if _, err := tx.CreateBucket(name); err != nil {
				return fmt.Errorf("index %s: create bucket %s: %w", ix.path, name, err)
			}
		}
		meta := tx.Bucket(bucketMeta)
		for k, v := range map[string][]byte{
			string(keyVersion):    binary.LittleEndian.AppendUint32(nil, Version),
			string(keyRepository): []byte(repoID),
			string(keyNextPack):   binary.LittleEndian.AppendUint32(nil, 0),
			string(keyGeneration): newGeneration(),
		} {
			if err := meta.Put([]byte(k), v); err != nil {
				return fmt.Errorf("index %s: write meta %s: %w", ix.path, k, err)
			}
		}
		return nil
	})
}

// recoverAdding removes the packs that a writer killed during a batched
// add (see addPacksBatched) left listed under the meta key adding: some of
// their blobs may be missing. They are in data/, not in the index, until a
// writer's next sync of the index adds them back from their trailers.
func (ix *Index) recoverAdding() error {
	return ix.update(ix.removeAdding)
}

// removeAdding removes the packs listed under the meta key adding, and the
// key; see recoverAdding.
func (ix *Index) removeAdding(tx *bolt.Tx) error {
	b, err := ix.buckets(tx)
	if err != nil {
		return err
	}
	v := b.meta.Get(keyAdding)
	if v == nil {
		return nil // another process recovered first
	}
	if len(v)%chunk.IDSize != 0 {
		return ix.corruptf("meta %s is %d bytes, want a multiple of %d", keyAdding, len(v), chunk.IDSize)
	}
	ids := make([]chunk.ID, 0, len(v)/chunk.IDSize)
	for ; len(v) > 0; v = v[chunk.IDSize:] {
		ids = append(ids, chunk.ID(v[:chunk.IDSize]))
	}
	if err := ix.removePacks(b, ids); err != nil {
		return err
	}
	if err := b.meta.Delete(keyAdding); err != nil {
		return fmt.Errorf("index %s: delete meta %s: %w", ix.path, keyAdding, err)
	}
	return nil
}

// checkMeta reports whether the index in tx is ready for use by repoID. It
// returns false, nil for a database without buckets, which init fills.
func (ix *Index) checkMeta(tx *bolt.Tx, repoID string) (bool, error) {
	meta := tx.Bucket(bucketMeta)
	if meta == nil {
		empty := true
		_ = tx.ForEach(func(name []byte, _ *bolt.Bucket) error {
			empty = false
			return nil
		})
		if !empty {
			return false, ix.corruptf("meta bucket missing")
		}
		return false, nil
	}
	v := meta.Get(keyVersion)
	if len(v) != 4 {
		return false, ix.corruptf("meta version is %d bytes, want 4", len(v))
	}
	if n := binary.LittleEndian.Uint32(v); n != Version {
		return false, ix.corruptf("schema version %d, this program reads version %d", n, Version)
	}
	if got := meta.Get(keyRepository); string(got) != repoID {
		return false, fmt.Errorf("index %s: written for repository %.64q, this is %s: %w", ix.path, got, repoID, ErrOtherRepository)
	}
	if _, err := ix.buckets(tx); err != nil {
		return false, err
	}
	return true, nil
}

// Hold keeps a read-only view of the index open between calls, which makes
// lookups much cheaper. It is meant for the single writer process: while
// held, no other process can commit to the index. Writes through this Index
// still work; each one briefly closes the view.
func (ix *Index) Hold() error {
	ix.wmu.Lock() // not while a write lends its handle
	defer ix.wmu.Unlock()
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if ix.closed {
		return ErrClosed
	}
	ix.holding = true
	if ix.held != nil {
		return nil
	}
	return ix.reopenHeld()
}

// Release closes the view opened by Hold.
func (ix *Index) Release() error {
	ix.wmu.Lock() // not while a write lends its handle
	defer ix.wmu.Unlock()
	ix.mu.Lock()
	defer ix.mu.Unlock()
	ix.holding = false
	return ix.closeHeld()
}

// Close releases the index. Later calls fail with ErrClosed.
func (ix *Index) Close() error {
	ix.wmu.Lock() // not while a write lends its handle
	defer ix.wmu.Unlock()
	ix.mu.Lock()
	defer ix.mu.Unlock()
	ix.closed = true
	ix.holding = false
	ix.dropShared()
	return ix.closeHeld()
}

func (ix *Index) reopenHeld() error {
	db, err := ix.openDB(true)
	if err != nil {
		return err
	}
	err = ix.guard(func() error {
		return db.View(func(tx *bolt.Tx) error {
			ix.heldMap = mappingOf(db, tx)
			return nil
		})
	})
	if err != nil {
		db.Close()
		return err
	}
	ix.held = db
	ix.heldKeys.Store(0)
	// A mapping never holds more than the file: a small index keeps its
	// pages mapped, and dropping them would only cost page faults.
	ix.heldLarge = int64(ix.heldMap.size) > ix.tune.dropAbove
	return nil
}

// touched counts n keys looked up in tx and, every tune.dropEvery keys,
// drops the pages that tx's handle has mapped, if its file is large: the
// held handle's, whose map never moves, or the read-write handle lent to
// views during a write, whose map is stable while tx is open. The caller
// holds mu for reading, so neither handle is closed meanwhile.
func (ix *Index) touched(tx *bolt.Tx, n int64) {
	var m mapping
	switch db := tx.DB(); {
	case n == 0:
		return
	case db == ix.held && ix.heldLarge:
		m = ix.heldMap
	case db == ix.lent && ix.lentLarge:
		m = mappingOf(db, tx)
	default:
		return
	}
	k := ix.heldKeys.Add(n)
	if k/ix.tune.dropEvery == (k-n)/ix.tune.dropEvery {
		return
	}
	if m.drop() == nil {
		ix.drops.Add(1)
	}
}

func (ix *Index) closeHeld() error {
	if ix.held == nil {
		return nil
	}
	err := ix.held.Close()
	ix.held = nil
	if err != nil {
		return fmt.Errorf("close index %s: %w", ix.path, err)
	}
	return nil
}

// openDB opens the file read-only (shared lock) or read-write (exclusive
// lock), waiting up to ix.timeout for other processes.
func (ix *Index) openDB(readOnly bool) (*bolt.DB, error) {
	deadline := time.Now().Add(ix.timeout)
	var file *os.File
	opts := &bolt.Options{
		Timeout:  ix.timeout,
		ReadOnly: readOnly,
		// A rebuild or prune can leave 100,000 and more free pages. The
		// hash-map free list sorted them all at every commit (18 ms each)
		// and built its maps at every read-write open (50 ms); the array
		// keeps them sorted and merges, and hands out single pages from
		// its front: 2,000 blobs into a 10-million-blob index in batches
		// took 0.11 s instead of 0.31.
		FreelistType: bolt.FreelistArrayType,
		OpenFile: func(name string, flag int, perm os.FileMode) (*os.File, error) {
			for {
				f, err := os.OpenFile(name, flag, perm)
				if err != nil {
					return nil, err
				}
				if err := lockFile(f, !readOnly, deadline); err != nil {
					f.Close()
					return nil, err
				}
				if renamedOver(f, name) {
					// Compact replaced the file while we waited for its
					// lock: a commit to the old one would be lost.
					f.Close()
					continue
				}
				// Kept so that it can be closed, dropping its locks, if bbolt
				// panics on a damaged file halfway through Open.
				file = f
				return f, nil
			}
		},
	}
	var db *bolt.DB
	err := ix.guard(func() (err error) {
		db, err = bolt.Open(ix.path, fileMode, opts)
		return err
	})
	if err == nil {
		// bbolt extends the file to its whole mapping (which doubles) while
		// that is below AllocSize, 16 MiB by default: an index of 3 MB of
		// pages took an 8 MiB file. Growing by 1 MiB keeps the file close
		// to what it holds.
		db.AllocSize = 1 << 20
		return db, nil
	}
	if db == nil && file != nil {
		_ = file.Close() // usually closed by bbolt already; then this fails harmlessly
	}
	var errno syscall.Errno
	var pathErr *fs.PathError
	switch {
	case errors.Is(err, ErrCorrupt):
		return nil, err
	case errors.Is(err, errTimeout), errors.Is(err, bolt.ErrTimeout):
		return nil, fmt.Errorf("open index %s: gave up after %v: another process keeps the file locked (a backup committing, or a stuck process): %w", ix.path, ix.timeout, ErrLocked)
	case errors.As(err, &pathErr), errors.As(err, &errno):
		return nil, fmt.Errorf("open index %s: %w", ix.path, err)
	}
	// The rest are bbolt's verdicts on the file's contents: bad meta pages,
	// a checksum mismatch, a file shorter than its two meta pages.
	return nil, fmt.Errorf("open index %s: %v: %w", ix.path, err, ErrCorrupt)
}

// renamedOver reports whether the file at name is no longer f.
func renamedOver(f *os.File, name string) bool {
	a, err := f.Stat()
	if err != nil {
		return false
	}
	b, err := os.Stat(name)
	return err == nil && !os.SameFile(a, b)
}

// errTimeout is returned by retry when the deadline passes.
var errTimeout = errors.New("timed out")

// retry calls try until it reports done or fails, pausing between attempts
// for a time that starts short, because the locks waited for are mostly held
// for one short transaction, and grows so that a long wait costs little.
func retry(deadline time.Time, try func() (done bool, err error)) error {
	pause := 100 * time.Microsecond
	for {
		done, err := try()
		if done || err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return errTimeout
		}
		time.Sleep(pause)
		pause = min(2*pause, 10*time.Millisecond)
	}
}

// callerPanic carries a panic raised by a caller's callback through guard,
// which must not mistake it for damage in the file.
type callerPanic struct{ v any }

// guard runs fn, which touches bbolt's memory map, and turns a panic into
// ErrCorrupt. bbolt trusts the file: damaged pages make it panic, and pages
// past the end of a truncated file fault (SIGBUS), which SetPanicOnFault
// turns into a panic we can recover from instead of a crash.
func (ix *Index) guard(fn func() error) (err error) {
	old := debug.SetPanicOnFault(true)
	defer func() {
		debug.SetPanicOnFault(old)
		if r := recover(); r != nil {
			if cp, ok := r.(callerPanic); ok {
				panic(cp.v)
			}
			err = fmt.Errorf("index %s: bbolt failed reading it: %v: %w", ix.path, r, ErrCorrupt)
		}
	}()
	return fn()
}

// call runs a caller's callback, marking a panic in it as the caller's.
func call(fn func() error) error {
	defer func() {
		if r := recover(); r != nil {
			panic(callerPanic{r})
		}
	}()
	return fn()
}

// view runs fn in one read transaction, on the held handle if there is one.
func (ix *Index) view(fn func(*bolt.Tx) error) error {
	return ix.viewKeys(1, fn)
}

// viewKeys is view for a transaction that looks up about keys keys.
func (ix *Index) viewKeys(keys int, fn func(*bolt.Tx) error) error {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	if ix.closed {
		return ErrClosed
	}
	if db := ix.lent; db != nil || ix.held != nil {
		if db == nil {
			db = ix.held
		}
		return ix.guard(func() error {
			return db.View(func(tx *bolt.Tx) error {
				err := fn(tx)
				ix.touched(tx, int64(keys))
				return err
			})
		})
	}
	// Not holding, or the held handle could not be reopened after the last
	// commit: use the shared handle.
	sh, err := ix.borrow()
	if err != nil {
		return err
	}
	err = ix.guard(func() error { return sh.db.View(fn) })
	ix.giveBack(sh)
	return err
}

// shareFor is how long the views of a process that does not hold the index
// share one read-only handle. Opening one per transaction (open, two
// locks, mmap, munmap, close) cost a restore of 1,200 directories some
// 1,000 opens; a writer of another process waits at most this long, plus
// the transactions running, for its exclusive lock.
const shareFor = 20 * time.Millisecond

// sharedDB is a read-only handle lent to views; it is closed once it has
// expired and its last view is done.
type sharedDB struct {
	db      *bolt.DB
	users   int
	expired bool
	closed  bool
}

// borrow returns the shared handle, opening one if there is none or it has
// expired. Give it back with giveBack.
func (ix *Index) borrow() (*sharedDB, error) {
	ix.smu.Lock()
	if sh := ix.shared; sh != nil && !sh.expired {
		sh.users++
		ix.smu.Unlock()
		return sh, nil
	}
	ix.smu.Unlock()
	db, err := ix.openDB(true) // unlocked: it may wait for a writer
	if err != nil {
		return nil, err
	}
	sh := &sharedDB{db: db, users: 1}
	ix.smu.Lock()
	defer ix.smu.Unlock()
	if cur := ix.shared; cur != nil && !cur.expired {
		sh.expired = true // another view opened one meanwhile: ours serves this view only
		return sh, nil
	}
	ix.shared = sh
	time.AfterFunc(ix.shareFor, func() { ix.expire(sh) })
	return sh, nil
}

func (ix *Index) giveBack(sh *sharedDB) {
	ix.smu.Lock()
	defer ix.smu.Unlock()
	sh.users--
	ix.closeSharedLocked(sh)
}

func (ix *Index) expire(sh *sharedDB) {
	ix.smu.Lock()
	defer ix.smu.Unlock()
	sh.expired = true
	ix.closeSharedLocked(sh)
}

// dropShared closes the shared handle; no view may be using it (the caller
// holds mu exclusively).
func (ix *Index) dropShared() {
	ix.smu.Lock()
	defer ix.smu.Unlock()
	if sh := ix.shared; sh != nil {
		sh.expired = true
		ix.closeSharedLocked(sh)
	}
}

// closeSharedLocked closes sh once it has expired and is unused. The
// caller holds smu.
func (ix *Index) closeSharedLocked(sh *sharedDB) {
	if !sh.expired || sh.users > 0 || sh.closed {
		return
	}
	sh.closed = true
	if ix.shared == sh {
		ix.shared = nil
	}
	_ = sh.db.Close() // read-only: nothing to lose
}

// update runs fn in one read-write transaction and commits it.
func (ix *Index) update(fn func(*bolt.Tx) error) error {
	return ix.write(func(db *bolt.DB) error { return db.Update(fn) })
}

// write runs fn with the index open read-write; fn may commit several
// transactions.
//
// While fn runs, this process's views read through the read-write handle:
// bbolt runs read transactions beside the write transaction, and they see
// the last commit. So a backup's lookups go on during the commit of a pack
// (and its fsyncs) instead of waiting for it: they waited 5.4 s in all
// during a 10.7 s backup of the large bench corpus.
func (ix *Index) write(fn func(*bolt.DB) error) (err error) {
	ix.wmu.Lock()
	defer ix.wmu.Unlock()
	db, err := ix.openWriter()
	if err != nil {
		return err
	}
	err = ix.guard(func() error { return fn(db) })
	ix.mu.Lock()
	defer ix.mu.Unlock()
	ix.lent = nil
	// Close waits for the views still reading through db.
	if cerr := db.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("close index %s: %w", ix.path, cerr)
	}
	if ix.holding && !ix.closed {
		if herr := ix.reopenHeld(); herr != nil && err == nil {
			err = herr
		}
	}
	return err
}

// openWriter closes this process's read-only handles, opens the file
// read-write and lends the handle to views. The caller holds wmu.
func (ix *Index) openWriter() (*bolt.DB, error) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if ix.closed {
		return nil, ErrClosed
	}
	// flock locks belong to the open file description: our own read-only
	// handles would block our exclusive lock forever, so close them first.
	ix.dropShared()
	if err := ix.closeHeld(); err != nil {
		return nil, err
	}
	db, err := ix.openDB(false)
	if err != nil {
		if ix.holding {
			_ = ix.reopenHeld() // the views fall back to shared handles if this fails too
		}
		return nil, err
	}
	ix.lent = db
	fi, err := os.Stat(ix.path)
	ix.lentLarge = err == nil && fi.Size() > ix.tune.dropAbove
	return db, nil
}

func (ix *Index) corruptf(format string, args ...any) error {
	return fmt.Errorf("index %s: %s: %w", ix.path, fmt.Sprintf(format, args...), ErrCorrupt)
}

type buckets struct {
	packs, packNums, blobs, meta *bolt.Bucket
	// dups holds the other copies of blobs stored in more than one pack
	// (key: blob ID, then the pack number big-endian), so that removing
	// the indexed copy's pack can fall back to another. It is nil in a
	// read transaction on an index that never had a duplicate.
	dups *bolt.Bucket
}

func (ix *Index) buckets(tx *bolt.Tx) (buckets, error) {
	b := buckets{
		packs:    tx.Bucket(bucketPacks),
		packNums: tx.Bucket(bucketPackNums),
		blobs:    tx.Bucket(bucketBlobs),
		meta:     tx.Bucket(bucketMeta),
		dups:     tx.Bucket(bucketDups),
	}
	if b.packs == nil || b.packNums == nil || b.blobs == nil || b.meta == nil {
		return b, ix.corruptf("a bucket is missing")
	}
	if b.dups == nil && tx.Writable() {
		var err error
		if b.dups, err = tx.CreateBucket(bucketDups); err != nil {
			return b, fmt.Errorf("index %s: create bucket %s: %w", ix.path, bucketDups, err)
		}
	}
	return b, nil
}

// lookupBuckets returns the buckets a lookup reads, blobs and packnums, and
// no others: a no-change backup runs thousands of small views, and finding
// all five buckets in each was a thirtieth of its CPU time.
func (ix *Index) lookupBuckets(tx *bolt.Tx) (buckets, error) {
	b := buckets{packNums: tx.Bucket(bucketPackNums), blobs: tx.Bucket(bucketBlobs)}
	if b.packNums == nil || b.blobs == nil {
		return b, ix.corruptf("a bucket is missing")
	}
	return b, nil
}

// dupKey is the key of another copy of blob id in pack num.
func dupKey(id chunk.ID, num uint32) []byte {
	return binary.BigEndian.AppendUint32(append([]byte(nil), id[:]...), num)
}

// Lookup returns the location of the blob id, and whether it is indexed.
func (ix *Index) Lookup(id chunk.ID) (loc Location, found bool, err error) {
	err = ix.view(func(tx *bolt.Tx) error {
		b, err := ix.lookupBuckets(tx)
		if err != nil {
			return err
		}
		loc, found, err = ix.lookup(b, id, nil)
		return err
	})
	return loc, found, err
}

// LookupMany looks up ids in one read transaction and calls fn for each with
// its position in ids. The calls come in blob-ID order, not in the order of
// ids, because sorted keys visit the file's pages in order. An error from fn
// stops the lookup and is returned.
func (ix *Index) LookupMany(ids []chunk.ID, fn func(i int, loc Location, found bool) error) error {
	packIDs := make(map[uint32]chunk.ID)
	return ix.viewSorted(ids, func(b buckets, i int) error {
		loc, found, err := ix.lookup(b, ids[i], packIDs)
		if err != nil {
			return err
		}
		return call(func() error { return fn(i, loc, found) })
	})
}

// HasMany reports, like LookupMany, whether each of ids is indexed, without
// decoding where: a backup checks this for every blob of every unchanged
// file.
func (ix *Index) HasMany(ids []chunk.ID, fn func(i int, found bool)) error {
	return ix.viewSorted(ids, func(b buckets, i int) error {
		found := b.blobs.Get(ids[i][:]) != nil
		return call(func() error { fn(i, found); return nil })
	})
}

// Has reports whether id is indexed.
func (ix *Index) Has(id chunk.ID) (found bool, err error) {
	err = ix.view(func(tx *bolt.Tx) error {
		b, err := ix.lookupBuckets(tx)
		if err == nil {
			found = b.blobs.Get(id[:]) != nil
		}
		return err
	})
	return found, err
}

// viewSorted calls fn with the position of each of ids, in blob-ID order,
// in one read transaction.
func (ix *Index) viewSorted(ids []chunk.ID, fn func(b buckets, i int) error) error {
	if len(ids) == 0 {
		return nil
	}
	order := make([]int, len(ids))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return compareIDs(ids[a], ids[b]) })
	// The keys are counted one by one, so that a long list does not map
	// all its leaves before the held handle's pages are dropped.
	return ix.viewKeys(0, func(tx *bolt.Tx) error {
		b, err := ix.lookupBuckets(tx)
		if err != nil {
			return err
		}
		for _, i := range order {
			if err := fn(b, i); err != nil {
				return err
			}
			ix.touched(tx, 1)
		}
		return nil
	})
}

func compareIDs(a, b chunk.ID) int {
	return slices.Compare(a[:], b[:])
}

// lookup finds id in b. packIDs, if not nil, caches pack numbers resolved
// earlier in the same transaction.
func (ix *Index) lookup(b buckets, id chunk.ID, packIDs map[uint32]chunk.ID) (Location, bool, error) {
	v := b.blobs.Get(id[:])
	if v == nil {
		return Location{}, false, nil
	}
	loc, err := ix.locate(b, id, v, packIDs)
	return loc, err == nil, err
}

// locate decodes the value v of blob id and resolves its pack number.
func (ix *Index) locate(b buckets, id chunk.ID, v []byte, packIDs map[uint32]chunk.ID) (Location, error) {
	blob, num, err := ix.decodeBlob(id, v)
	if err != nil {
		return Location{}, err
	}
	packID, ok := packIDs[num]
	if !ok {
		if packID, err = ix.packID(b, num); err != nil {
			return Location{}, fmt.Errorf("blob %s: %w", id.Short(), err)
		}
		if packIDs != nil {
			packIDs[num] = packID
		}
	}
	return Location{Pack: packID, Blob: blob}, nil
}

func (ix *Index) packID(b buckets, num uint32) (chunk.ID, error) {
	v := b.packNums.Get(packNumKey(num))
	if v == nil {
		return chunk.ID{}, ix.corruptf("pack number %d is not listed", num)
	}
	if len(v) != chunk.IDSize {
		return chunk.ID{}, ix.corruptf("pack number %d: ID is %d bytes, want %d", num, len(v), chunk.IDSize)
	}
	return chunk.ID(v), nil
}

// AddPack records a durable pack and its blobs in one read-write
// transaction. Adding a pack the index already lists changes nothing. A blob
// the index already lists keeps its first location.
func (ix *Index) AddPack(id chunk.ID, size int64, blobs []pack.Blob) error {
	return ix.AddPacks([]PackInfo{{ID: id, Size: size, Count: len(blobs)}}, [][]pack.Blob{blobs})
}

// AddPacks records many packs in one transaction, as a rebuild does; blobs[i]
// are the blobs of packs[i], and earlier packs win for blobs stored twice.
// The transaction holds all changes in memory until it commits, so a rebuild
// passes a few hundred thousand blobs per call (100 packs of 2,000 blobs per
// call built an index of a million blobs in 2.5 s).
func (ix *Index) AddPacks(packs []PackInfo, blobs [][]pack.Blob) error {
	return ix.ReplacePacks(nil, packs, blobs)
}

// RemovePacks removes the packs ids and every blob entry that points into
// them, in one transaction; unknown IDs are ignored. A blob that also has a
// copy in a remaining pack stays indexed at that copy (see the dups bucket).
// A prune that repacks blobs uses ReplacePacks, so the moved blobs point at
// their new packs in the same transaction.
func (ix *Index) RemovePacks(ids []chunk.ID) error {
	return ix.ReplacePacks(ids, nil, nil)
}

// ReplacePacks removes the packs remove, as RemovePacks does, and then adds
// packs, as AddPacks does, in one transaction. A prune that copies the blobs
// still needed from old packs into new ones uses it so that readers never
// miss a moved blob and the moved blobs point at their new copies.
func (ix *Index) ReplacePacks(remove []chunk.ID, packs []PackInfo, blobs [][]pack.Blob) error {
	if len(remove) == 0 && len(packs) == 0 && len(blobs) == 0 {
		return nil // spare a commit
	}
	if len(packs) != len(blobs) {
		return fmt.Errorf("index: add %d packs with %d blob lists", len(packs), len(blobs))
	}
	for i, p := range packs {
		if err := checkPack(p.ID, p.Size, p.Count, blobs[i]); err != nil {
			return err
		}
	}
	if len(remove) == 0 && ix.batchAdd(blobs) {
		return ix.write(func(db *bolt.DB) error { return ix.addPacksBatched(db, packs, blobs) })
	}
	return ix.update(func(tx *bolt.Tx) error {
		b, err := ix.buckets(tx)
		if err != nil {
			return err
		}
		if err := ix.removePacks(b, remove); err != nil {
			return err
		}
		entries, _, err := ix.addPackRecords(b, packs, blobs)
		if err != nil {
			return err
		}
		return ix.putBlobs(b, entries)
	})
}

// batchAdd reports whether blobs should be added in several transactions:
// more than one batch of them, to an index larger than tune.batchAbove, and
// not a bulk load such as a rebuild's, whose keys reach most leaves anyway
// and which would only pay for the many commits.
func (ix *Index) batchAdd(blobs [][]pack.Blob) bool {
	n := 0
	for _, bs := range blobs {
		n += len(bs)
	}
	if n <= ix.tune.addBatch || n > maxBatched {
		return false
	}
	fi, err := os.Stat(ix.path)
	return err == nil && fi.Size() > ix.tune.batchAbove
}

// addPacksBatched adds packs to a large index in several transactions, so
// that no commit maps more than tune.addBatch blobs' leaves (see
// mapping.go). The first records the packs and lists them under the meta
// key adding; the others write their blobs, tune.addBatch at a time, the
// last one deleting adding. Other processes cannot look in between: the
// handle's exclusive lock is held throughout. A process killed halfway
// leaves adding behind, and Open then removes those packs again (see
// recoverAdding); the writer's next sync of the index adds them back whole.
func (ix *Index) addPacksBatched(db *bolt.DB, packs []PackInfo, blobs [][]pack.Blob) error {
	var entries []entry
	err := db.Update(func(tx *bolt.Tx) error {
		b, err := ix.buckets(tx)
		if err != nil {
			return err
		}
		var added []chunk.ID
		entries, added, err = ix.addPackRecords(b, packs, blobs)
		if err != nil || len(added) == 0 {
			return err
		}
		v := make([]byte, 0, len(added)*chunk.IDSize)
		for _, id := range added {
			v = append(v, id[:]...)
		}
		if err := b.meta.Put(keyAdding, v); err != nil {
			return fmt.Errorf("index %s: write meta %s: %w", ix.path, keyAdding, err)
		}
		return nil
	})
	for done := 0; err == nil && done < len(entries); {
		if err = ix.dropWriter(db); err != nil {
			break
		}
		batch := entries[done:min(done+ix.tune.addBatch, len(entries))]
		last := done+len(batch) == len(entries)
		err = db.Update(func(tx *bolt.Tx) error {
			b, err := ix.buckets(tx)
			if err != nil {
				return err
			}
			if err := ix.putBlobs(b, batch); err != nil {
				return err
			}
			if last {
				if err := b.meta.Delete(keyAdding); err != nil {
					return fmt.Errorf("index %s: delete meta %s: %w", ix.path, keyAdding, err)
				}
			}
			return nil
		})
		done += len(batch)
		if err == nil && ix.afterBatch != nil {
			err = ix.afterBatch(done)
		}
	}
	if err != nil && len(entries) > 0 {
		// A batch failed after the packs were recorded: take them out again
		// now if possible, rather than leave half a pack to the next Open.
		_ = ix.guard(func() error { return db.Update(ix.removeAdding) })
	}
	return err
}

// dropWriter drops the pages mapped by the read-write handle db between two
// of its transactions, when bbolt cannot be replacing its map.
func (ix *Index) dropWriter(db *bolt.DB) error {
	return db.View(func(tx *bolt.Tx) error {
		if err := mappingOf(db, tx).drop(); err != nil {
			return fmt.Errorf("index %s: %w", ix.path, err)
		}
		ix.drops.Add(1)
		return nil
	})
}

// checkPack refuses what the index could not store or later decode.
func checkPack(id chunk.ID, size int64, count int, blobs []pack.Blob) error {
	if len(blobs) < 1 || len(blobs) > pack.MaxBlobs || count != len(blobs) {
		return fmt.Errorf("index: add pack %s: count %d with %d blobs, want equal counts in 1..%d", id.Short(), count, len(blobs), pack.MaxBlobs)
	}
	if size < pack.MinPackSize {
		return fmt.Errorf("index: add pack %s: size %d is below the minimum pack size %d", id.Short(), size, pack.MinPackSize)
	}
	for _, b := range blobs {
		if b.Type > pack.TreeBlob || b.Compression > pack.Zstd {
			return fmt.Errorf("index: add pack %s: blob %s has type %d, compression %d", id.Short(), b.ID.Short(), b.Type, b.Compression)
		}
	}
	return nil
}

// entry is a blob to add to the index: in pack number num, and given in
// position seq, so that the first of two copies wins.
type entry struct {
	blob pack.Blob
	num  uint32
	seq  int
}

// addPackRecords records those of packs that the index does not list yet,
// and returns their blobs in key order and their IDs.
func (ix *Index) addPackRecords(b buckets, packs []PackInfo, blobs [][]pack.Blob) ([]entry, []chunk.ID, error) {
	if len(packs) == 0 {
		return nil, nil, nil
	}
	next, err := ix.nextPack(b)
	if err != nil {
		return nil, nil, err
	}
	var entries []entry
	var added []chunk.ID
	// bbolt keeps references to keys and values until the commit, so each
	// Put gets bytes of its own, carved from buf.
	var buf []byte
	for i, p := range packs {
		if b.packs.Get(p.ID[:]) != nil {
			continue // known, or listed twice in packs
		}
		if next == math.MaxUint32 {
			// A rebuild numbers the packs from 0 again.
			return nil, nil, fmt.Errorf("index %s: all pack numbers used; run 'snap repair index' to renumber", ix.path)
		}
		num := next
		next++
		var k, v []byte
		buf, k = appendOwn(buf, p.ID[:])
		buf, v = appendOwn(buf, encodePack(num, p.Size, len(blobs[i])))
		if err := b.packs.Put(k, v); err != nil {
			return nil, nil, fmt.Errorf("index %s: add pack %s: %w", ix.path, p.ID.Short(), err)
		}
		buf, v = appendOwn(buf, packNumKey(num))
		if err := b.packNums.Put(v, k); err != nil {
			return nil, nil, fmt.Errorf("index %s: add pack %s: %w", ix.path, p.ID.Short(), err)
		}
		added = append(added, p.ID)
		for _, bl := range blobs[i] {
			entries = append(entries, entry{bl, num, len(entries)})
		}
	}
	if len(entries) == 0 {
		return nil, nil, nil
	}
	_, v := appendOwn(buf, binary.LittleEndian.AppendUint32(nil, next))
	if err := b.meta.Put(keyNextPack, v); err != nil {
		return nil, nil, fmt.Errorf("index %s: write meta next_pack: %w", ix.path, err)
	}
	// Insert in key order. bbolt splits nodes only at commit, so random
	// inserts into a node that grows within the transaction cost a memmove
	// of the node each; in order they append. Of two copies of a blob the
	// first one given wins.
	slices.SortFunc(entries, func(x, y entry) int {
		if c := compareIDs(x.blob.ID, y.blob.ID); c != 0 {
			return c
		}
		return x.seq - y.seq
	})
	return entries, added, nil
}

// putBlobs writes the blob entries; a blob the index lists already is
// recorded as another copy.
func (ix *Index) putBlobs(b buckets, entries []entry) error {
	buf := make([]byte, 0, len(entries)*(chunk.IDSize+blobValueSize+4))
	for _, e := range entries {
		if b.blobs.Get(e.blob.ID[:]) != nil {
			// Another copy: remembered, so it can stand in when the
			// indexed copy's pack is removed.
			var k, v []byte
			buf, k = appendOwn(buf, dupKey(e.blob.ID, e.num))
			buf, v = appendOwn(buf, encodeBlob(e.blob, e.num))
			if err := b.dups.Put(k, v); err != nil {
				return fmt.Errorf("index %s: add copy of blob %s: %w", ix.path, e.blob.ID.Short(), err)
			}
			continue
		}
		var k, v []byte
		buf, k = appendOwn(buf, e.blob.ID[:])
		buf, v = appendOwn(buf, encodeBlob(e.blob, e.num))
		if err := b.blobs.Put(k, v); err != nil {
			return fmt.Errorf("index %s: add blob %s: %w", ix.path, e.blob.ID.Short(), err)
		}
	}
	return nil
}

// appendOwn appends p to buf and returns the copy. The copy is never written
// again, even if a later append moves buf, so bbolt may keep it.
func appendOwn(buf, p []byte) ([]byte, []byte) {
	n := len(buf)
	buf = append(buf, p...)
	return buf, buf[n:len(buf):len(buf)]
}

func (ix *Index) nextPack(b buckets) (uint32, error) {
	v := b.meta.Get(keyNextPack)
	if len(v) != 4 {
		return 0, ix.corruptf("meta next_pack is %d bytes, want 4", len(v))
	}
	return binary.LittleEndian.Uint32(v), nil
}

func (ix *Index) removePacks(b buckets, ids []chunk.ID) error {
	nums := make(map[uint32]bool)
	for _, id := range ids {
		v := b.packs.Get(id[:])
		if v == nil {
			continue
		}
		p, num, err := ix.decodePack(id, v)
		if err != nil {
			return err
		}
		if err := b.packs.Delete(p.ID[:]); err != nil {
			return fmt.Errorf("index %s: remove pack %s: %w", ix.path, id.Short(), err)
		}
		if err := b.packNums.Delete(packNumKey(num)); err != nil {
			return fmt.Errorf("index %s: remove pack %s: %w", ix.path, id.Short(), err)
		}
		nums[num] = true
	}
	if len(nums) == 0 {
		return nil
	}
	// Blobs may go: a snapshot written under the old generation no longer
	// proves that its blobs are indexed.
	if err := b.meta.Put(keyGeneration, newGeneration()); err != nil {
		return fmt.Errorf("index %s: write meta %s: %w", ix.path, keyGeneration, err)
	}
	// Blob entries do not say which pack they are in without a full scan.
	// Collect first and delete afterwards: deleting under a cursor can make
	// the cursor skip the next key.
	var doomed []chunk.ID
	c := b.blobs.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if len(k) != chunk.IDSize {
			return ix.corruptf("blob key is %d bytes, want %d", len(k), chunk.IDSize)
		}
		_, num, err := ix.decodeBlob(chunk.ID(k), v)
		if err != nil {
			return err
		}
		if nums[num] {
			doomed = append(doomed, chunk.ID(k))
		}
	}
	// Copies in removed packs go; a removed blob entry is replaced by a
	// copy in a remaining pack, if there is one.
	var staleDups [][]byte
	dc := b.dups.Cursor()
	for k, _ := dc.First(); k != nil; k, _ = dc.Next() {
		if len(k) != chunk.IDSize+4 {
			return ix.corruptf("copy key is %d bytes, want %d", len(k), chunk.IDSize+4)
		}
		if nums[binary.BigEndian.Uint32(k[chunk.IDSize:])] {
			staleDups = append(staleDups, append([]byte(nil), k...))
		}
	}
	for _, k := range staleDups {
		if err := b.dups.Delete(k); err != nil {
			return fmt.Errorf("index %s: remove copy: %w", ix.path, err)
		}
	}
	for _, id := range doomed {
		if err := b.blobs.Delete(id[:]); err != nil {
			return fmt.Errorf("index %s: remove blob %s: %w", ix.path, id.Short(), err)
		}
		dc := b.dups.Cursor()
		if k, v := dc.Seek(id[:]); k != nil && len(k) == chunk.IDSize+4 && chunk.ID(k[:chunk.IDSize]) == id {
			key, val := append([]byte(nil), id[:]...), append([]byte(nil), v...)
			if err := b.blobs.Put(key, val); err != nil {
				return fmt.Errorf("index %s: restore copy of blob %s: %w", ix.path, id.Short(), err)
			}
			if err := b.dups.Delete(append([]byte(nil), k...)); err != nil {
				return fmt.Errorf("index %s: remove copy: %w", ix.path, err)
			}
		}
	}
	return nil
}

// Generation returns the index's generation as 32 hex digits: a random value
// drawn when the file is created and again whenever a pack is removed. While
// it stays the same, no blob has left the index, so every blob a snapshot
// referred to when it was written under this generation is still indexed. An
// index written before generations existed gets one here (the caller must be
// the writer).
func (ix *Index) Generation() (string, error) {
	var g []byte
	err := ix.view(func(tx *bolt.Tx) error {
		b, err := ix.buckets(tx)
		if err == nil {
			g = append(g, b.meta.Get(keyGeneration)...)
		}
		return err
	})
	if err != nil {
		return "", err
	}
	if g == nil {
		err = ix.update(func(tx *bolt.Tx) error {
			b, err := ix.buckets(tx)
			if err != nil {
				return err
			}
			if g = append(g, b.meta.Get(keyGeneration)...); g == nil {
				g = newGeneration()
				if err := b.meta.Put(keyGeneration, g); err != nil {
					return fmt.Errorf("index %s: write meta %s: %w", ix.path, keyGeneration, err)
				}
			}
			return nil
		})
		if err != nil {
			return "", err
		}
	}
	return hex.EncodeToString(g), nil
}

// newGeneration draws a generation value; crypto/rand does not fail on Linux.
func newGeneration() []byte {
	g := make([]byte, 16)
	rand.Read(g)
	return g
}

// HasPack reports whether the pack id is indexed.
func (ix *Index) HasPack(id chunk.ID) (found bool, err error) {
	err = ix.view(func(tx *bolt.Tx) error {
		b, err := ix.buckets(tx)
		if err != nil {
			return err
		}
		found = b.packs.Get(id[:]) != nil
		return nil
	})
	return found, err
}

// Packs calls fn for every indexed pack, in pack-ID order, in one read
// transaction. An error from fn stops the iteration and is returned.
func (ix *Index) Packs(fn func(PackInfo) error) error {
	return ix.view(func(tx *bolt.Tx) error {
		b, err := ix.buckets(tx)
		if err != nil {
			return err
		}
		c := b.packs.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if len(k) != chunk.IDSize {
				return ix.corruptf("pack key is %d bytes, want %d", len(k), chunk.IDSize)
			}
			p, _, err := ix.decodePack(chunk.ID(k), v)
			if err != nil {
				return err
			}
			if err := call(func() error { return fn(p) }); err != nil {
				return err
			}
		}
		return nil
	})
}

// Blobs calls fn for every indexed blob, in blob-ID order, in one read
// transaction. An error from fn stops the iteration and is returned.
func (ix *Index) Blobs(fn func(Location) error) error {
	return ix.view(func(tx *bolt.Tx) error {
		b, err := ix.buckets(tx)
		if err != nil {
			return err
		}
		packIDs := make(map[uint32]chunk.ID)
		c := b.blobs.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if len(k) != chunk.IDSize {
				return ix.corruptf("blob key is %d bytes, want %d", len(k), chunk.IDSize)
			}
			loc, err := ix.locate(b, chunk.ID(k), v, packIDs)
			if err != nil {
				return err
			}
			if err := call(func() error { return fn(loc) }); err != nil {
				return err
			}
		}
		return nil
	})
}

// Stats returns the number of indexed packs and blobs.
func (ix *Index) Stats() (packs, blobs int, err error) {
	err = ix.view(func(tx *bolt.Tx) error {
		b, err := ix.buckets(tx)
		if err != nil {
			return err
		}
		packs = b.packs.Stats().KeyN
		blobs = b.blobs.Stats().KeyN
		return nil
	})
	return packs, blobs, err
}

// packNumKey is big-endian so that pack numbers sort as keys.
func packNumKey(num uint32) []byte {
	return binary.BigEndian.AppendUint32(nil, num)
}

func encodePack(num uint32, size int64, count int) []byte {
	v := make([]byte, 0, packValueSize)
	v = binary.LittleEndian.AppendUint32(v, num)
	v = binary.LittleEndian.AppendUint64(v, uint64(size))
	v = binary.LittleEndian.AppendUint32(v, uint32(count))
	return v
}

func (ix *Index) decodePack(id chunk.ID, v []byte) (PackInfo, uint32, error) {
	if len(v) != packValueSize {
		return PackInfo{}, 0, ix.corruptf("pack %s: value is %d bytes, want %d", id.Short(), len(v), packValueSize)
	}
	num := binary.LittleEndian.Uint32(v[0:])
	size := binary.LittleEndian.Uint64(v[4:])
	count := binary.LittleEndian.Uint32(v[12:])
	if size < pack.MinPackSize || size > math.MaxInt64 || count < 1 || count > pack.MaxBlobs {
		return PackInfo{}, 0, ix.corruptf("pack %s: size %d with %d blobs", id.Short(), size, count)
	}
	return PackInfo{ID: id, Size: int64(size), Count: int(count)}, num, nil
}

func encodeBlob(b pack.Blob, num uint32) []byte {
	v := make([]byte, 0, blobValueSize)
	v = append(v, byte(b.Type), byte(b.Compression))
	v = binary.LittleEndian.AppendUint32(v, num)
	v = binary.LittleEndian.AppendUint64(v, b.Offset)
	v = binary.LittleEndian.AppendUint32(v, b.Length)
	v = binary.LittleEndian.AppendUint32(v, b.RawLength)
	v = binary.LittleEndian.AppendUint64(v, b.Checksum)
	return v
}

func (ix *Index) decodeBlob(id chunk.ID, v []byte) (pack.Blob, uint32, error) {
	if len(v) != blobValueSize {
		return pack.Blob{}, 0, ix.corruptf("blob %s: value is %d bytes, want %d", id.Short(), len(v), blobValueSize)
	}
	b := pack.Blob{
		Type:        pack.BlobType(v[0]),
		Compression: pack.Compression(v[1]),
		ID:          id,
		Offset:      binary.LittleEndian.Uint64(v[6:]),
		Length:      binary.LittleEndian.Uint32(v[14:]),
		RawLength:   binary.LittleEndian.Uint32(v[18:]),
		Checksum:    binary.LittleEndian.Uint64(v[22:]),
	}
	if b.Type > pack.TreeBlob || b.Compression > pack.Zstd {
		return pack.Blob{}, 0, ix.corruptf("blob %s: type %d, compression %d", id.Short(), b.Type, b.Compression)
	}
	return b, binary.LittleEndian.Uint32(v[2:]), nil
}
