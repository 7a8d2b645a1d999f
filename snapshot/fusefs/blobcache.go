package fusefs

import (
	"container/list"
	"context"
	"sync"

	"snap/chunk"
)

// blobCache keeps the raw bytes of recently read data blobs, bounded by their
// total size, and makes sure that a blob wanted by several readers at once
// (the kernel sends reads of one file in parallel, and read-ahead runs beside
// them) is loaded only once.
//
// Loads run in their own goroutines under the cache's context, not the
// context of the read that asked first: a reader interrupted by a signal
// must not fail the other readers waiting for the same blob, and the blob it
// asked for is usually wanted again by the retried read a moment later.
type blobCache struct {
	ctx context.Context // ends background loads at unmount
	max int64           // bytes of raw blob data to keep

	// prefetchSlots bounds the read-ahead loads that run at once, so that
	// read-ahead leaves CPU time (SHA-256, zstd) for the reads that wait.
	prefetchSlots chan struct{}

	mu       sync.Mutex
	used     int64
	lru      list.List // of *cacheEntry, most recently used first
	entries  map[chunk.ID]*list.Element
	loading  map[chunk.ID]*pendingLoad
	prefetch int // read-ahead loads started and not finished

	// Counters for tests and diagnostics; guarded by mu.
	hits, misses, loads, prefetched int64
}

type cacheEntry struct {
	id   chunk.ID
	data []byte
}

// pendingLoad is a load in progress; done is closed when data or err is set.
type pendingLoad struct {
	done chan struct{}
	data []byte
	err  error
}

// maxQueuedPrefetch bounds the read-ahead loads waiting for a slot, over
// all open files, so that many files read at once cannot pile up goroutines.
const maxQueuedPrefetch = 64

// loadFunc loads one blob's raw, verified bytes.
type loadFunc func(ctx context.Context) ([]byte, error)

func newBlobCache(ctx context.Context, max int64, parallel int) *blobCache {
	if parallel < 1 {
		parallel = 1
	}
	return &blobCache{
		ctx:           ctx,
		max:           max,
		prefetchSlots: make(chan struct{}, parallel),
		entries:       make(map[chunk.ID]*list.Element),
		loading:       make(map[chunk.ID]*pendingLoad),
	}
}

// get returns the blob id, from the cache or by calling load. It returns
// ctx's error if ctx ends first; the load goes on and its result is cached.
func (c *blobCache) get(ctx context.Context, id chunk.ID, load loadFunc) ([]byte, error) {
	c.mu.Lock()
	if el, ok := c.entries[id]; ok {
		c.lru.MoveToFront(el)
		c.hits++
		data := el.Value.(*cacheEntry).data
		c.mu.Unlock()
		return data, nil
	}
	c.misses++
	p, ok := c.loading[id]
	if !ok {
		p = c.startLocked(id)
		go c.run(id, p, load, false)
	}
	c.mu.Unlock()

	select {
	case <-p.done:
		return p.data, p.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// contains reports whether id is cached or being loaded.
func (c *blobCache) contains(id chunk.ID) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, cached := c.entries[id]
	_, loading := c.loading[id]
	return cached || loading
}

// startPrefetch loads id in the background unless it is cached, already
// being loaded, or too many read-ahead loads are queued. It reports whether
// the blob is cached or on its way.
func (c *blobCache) startPrefetch(id chunk.ID, load loadFunc) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[id]; ok {
		return true
	}
	if _, ok := c.loading[id]; ok {
		return true
	}
	if c.prefetch >= maxQueuedPrefetch {
		return false
	}
	c.prefetch++
	c.prefetched++
	p := c.startLocked(id)
	go c.run(id, p, load, true)
	return true
}

func (c *blobCache) startLocked(id chunk.ID) *pendingLoad {
	p := &pendingLoad{done: make(chan struct{})}
	c.loading[id] = p
	c.loads++
	return p
}

// run performs a load and publishes its result. Read-ahead loads first
// wait for one of the prefetch slots.
func (c *blobCache) run(id chunk.ID, p *pendingLoad, load loadFunc, prefetch bool) {
	if prefetch {
		select {
		case c.prefetchSlots <- struct{}{}:
			p.data, p.err = load(c.ctx)
			<-c.prefetchSlots
		case <-c.ctx.Done():
			p.err = c.ctx.Err()
		}
	} else {
		p.data, p.err = load(c.ctx)
	}

	c.mu.Lock()
	delete(c.loading, id)
	if prefetch {
		c.prefetch--
	}
	if p.err == nil {
		c.addLocked(id, p.data)
	}
	c.mu.Unlock()
	close(p.done)
}

// addLocked caches data and evicts the least recently used blobs beyond
// the limit. A blob larger than the whole cache is not kept.
func (c *blobCache) addLocked(id chunk.ID, data []byte) {
	size := int64(len(data))
	if size > c.max {
		return
	}
	if el, ok := c.entries[id]; ok {
		c.lru.MoveToFront(el)
		return
	}
	c.entries[id] = c.lru.PushFront(&cacheEntry{id: id, data: data})
	c.used += size
	for c.used > c.max {
		el := c.lru.Back()
		e := el.Value.(*cacheEntry)
		c.lru.Remove(el)
		delete(c.entries, e.id)
		c.used -= int64(len(e.data))
	}
}

// cacheStats is a snapshot of the cache's counters.
type cacheStats struct {
	Used, Max                       int64
	Blobs                           int
	Hits, Misses, Loads, Prefetched int64
}

func (c *blobCache) stats() cacheStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return cacheStats{Used: c.used, Max: c.max, Blobs: len(c.entries),
		Hits: c.hits, Misses: c.misses, Loads: c.loads, Prefetched: c.prefetched}
}
