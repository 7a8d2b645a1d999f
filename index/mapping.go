package index

import (
	bolt "go.etcd.io/bbolt"
)

// bbolt reads index.db through a shared, read-only memory map. Every page
// fault on it maps the faulting page and, by the kernel's fault-around and
// its large page-cache folios, whatever neighbours are cached: 100–250 KiB
// per random lookup in a warm 1.7 GB index. All of it counts in the
// process's RSS. A large index therefore has its mapped pages dropped again
// (madvise MADV_DONTNEED) every dropEvery keys looked up, and a write of
// many blobs is split into transactions of addBatch blobs with a drop
// after each, because a commit maps every leaf it changes: 2,000 blobs of
// one pack mapped 400 MiB in one transaction. Dropping a page of a shared
// file mapping loses nothing: the next access maps it again from the page
// cache, and bbolt never writes through its map.

// tuning holds the constants below; tests lower them.
type tuning struct {
	dropAbove  int64 // bytes of index.db above which lookups drop the pages they mapped
	batchAbove int64 // bytes of index.db above which a pack's blobs are added in batches
	dropEvery  int64 // keys looked up between drops
	addBatch   int   // blobs per transaction when adding in batches
}

// dropAbove is the size of index.db from which lookups drop the pages they
// mapped, through the held handle or the write handle lent to them: about
// 200,000 blobs. Below it the whole file may stay mapped,
// which costs little and keeps lookups fast. With a 1-million-blob index
// (213 MB) a first backup of the small bench corpus peaked at 85–88 MiB
// with drops and 231–236 MiB without, in the same time; dropping at 4 MiB
// saved only 10 of the large corpus's 107 MiB, whose index commits map
// most of its 28 MB file anyway.
const dropAbove = 32 << 20

// batchAbove is the size of index.db from which blobs are added in batches:
// below it, a commit can map at most the small file.
const batchAbove = 32 << 20

// dropEvery bounds what lookups keep mapped to about dropEvery × 250 KiB:
// a no-change backup of the small bench corpus on a warm 10-million-blob
// index peaked at 53 MiB with 64, 65 MiB with 128, 300 MiB before.
const dropEvery = 64

// addBatch bounds a commit's mapping to about addBatch × 250 KiB, at two
// fsyncs per batch: on the bench disk 2,000 blobs took 0.14 s in batches of
// 128 against 0.10 s in one transaction, and mapped 30 MiB instead of 407.
const addBatch = 128

// maxBatched is the most blobs added in batches: a few packs' worth. More
// come from a bulk load, which commits them in one transaction.
const maxBatched = 16 << 10

var defaultTuning = tuning{dropAbove: dropAbove, batchAbove: batchAbove, dropEvery: dropEvery, addBatch: addBatch}

// mapping is the address range of one handle's memory map of index.db, as
// far as the file's pages reach.
type mapping struct {
	addr, size uintptr
}

// mappingOf returns the mapping of db as seen by tx, a read transaction of
// db. bbolt only replaces its map when a write transaction grows the file,
// and then waits for the read transactions, so the range stays valid while
// tx is open, and for as long as a read-only handle is.
func mappingOf(db *bolt.DB, tx *bolt.Tx) mapping {
	return mapping{addr: db.Info().Data, size: uintptr(tx.Size())}
}

// drop unmaps the pages of m; see the comment at the top of this file.
func (m mapping) drop() error {
	if m.addr == 0 || m.size == 0 {
		return nil
	}
	return dropPages(m.addr, m.size)
}
