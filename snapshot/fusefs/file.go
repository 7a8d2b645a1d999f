package fusefs

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"snap/chunk"
	"snap/index"
	"snap/repo"
	"snap/repo/pack"
)

// maxReadAheadBlobs bounds the blobs one read starts loading ahead, for
// files of many small blobs.
const maxReadAheadBlobs = 64

// fileNode is a regular file inside a snapshot.
type fileNode struct {
	entryNode

	mu  sync.Mutex
	lay *layout // set by the first successful Open, shared by later ones
}

var _ fs.NodeOpener = (*fileNode)(nil)

// layout maps a file's offsets to its content blobs.
type layout struct {
	ids  []chunk.ID
	ends []uint64 // ends[i] is the offset just past blob i: cumulative raw lengths

	mu   sync.Mutex
	locs []index.Location // where each blob was last found
}

// start returns the offset of blob k in the file.
func (l *layout) start(k int) uint64 {
	if k == 0 {
		return 0
	}
	return l.ends[k-1]
}

// blobAt returns the index of the blob holding offset off (< size).
func (l *layout) blobAt(off uint64) int {
	return sort.Search(len(l.ends), func(i int) bool { return l.ends[i] > off })
}

func (l *layout) loc(k int) index.Location {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.locs[k]
}

// moved records a blob's new location for every place it has in the file.
func (l *layout) moved(id chunk.ID, loc index.Location) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := range l.ids {
		if l.ids[i] == id {
			l.locs[i] = loc
		}
	}
}

// layout returns the file's layout, looking up all its blobs in one index
// transaction the first time: their raw lengths give the offsets, and
// their locations save a lookup per read.
func (f *fileNode) layout() (*layout, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.lay != nil {
		return f.lay, nil
	}
	ids := f.node.Content
	lay := &layout{ids: ids, ends: make([]uint64, len(ids)), locs: make([]index.Location, len(ids))}
	missing := -1
	err := f.fsys.r.Index().LookupMany(ids, func(i int, loc index.Location, found bool) error {
		if !found {
			missing = i
			return nil
		}
		lay.locs[i] = loc
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("look up the %d blobs of the file in the index: %w", len(ids), err)
	}
	if missing >= 0 {
		return nil, fmt.Errorf("data blob %s: %w", ids[missing].Short(), repo.ErrBlobMissing)
	}
	var end uint64
	for i := range ids {
		end += uint64(lay.locs[i].RawLength)
		lay.ends[i] = end
	}
	if end != f.node.Size {
		return nil, fmt.Errorf("content is %d bytes, the snapshot says %d: %w", end, f.node.Size, repo.ErrBlobCorrupt)
	}
	f.lay = lay
	return lay, nil
}

// Open prepares the file for reading. The content of a file in a snapshot
// never changes, so the kernel may keep its pages cached across opens.
func (f *fileNode) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	if flags&(syscall.O_WRONLY|syscall.O_RDWR) != 0 {
		return nil, 0, syscall.EROFS
	}
	lay, err := f.layout()
	if err != nil {
		f.fsys.opts.Logf("open %s: %v", f.path(), err)
		return nil, 0, errno(err)
	}
	return &handle{f: f, lay: lay, last: -1}, fuse.FOPEN_KEEP_CACHE, 0
}

// handle is an open file. It remembers where the last read was, to tell
// sequential reading (worth reading ahead) from random access.
type handle struct {
	f   *fileNode
	lay *layout

	mu   sync.Mutex
	last int // the last blob the previous read reached; -1 before the first
}

var _ fs.FileReader = (*handle)(nil)

// Read copies the file's bytes at off into dest, from cached blobs or
// freshly loaded and verified ones.
func (h *handle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	size := h.f.node.Size
	if off < 0 {
		return nil, syscall.EINVAL
	}
	if uint64(off) >= size || len(dest) == 0 {
		return fuse.ReadResultData(nil), 0
	}
	end := min(uint64(off)+uint64(len(dest)), size)
	first, last := h.lay.blobAt(uint64(off)), h.lay.blobAt(end-1)
	h.readAhead(first, last)

	n, pos := 0, uint64(off)
	for k := first; pos < end && k < len(h.lay.ids); k++ {
		data, err := h.f.fsys.cache.get(ctx, h.lay.ids[k], h.loader(k))
		if err != nil {
			eno := errno(err)
			if eno == syscall.EIO {
				h.f.fsys.opts.Logf("read %s at offset %d: %v", h.f.path(), pos, err)
			}
			return nil, eno
		}
		skip := pos - h.lay.start(k)
		if skip > uint64(len(data)) { // cannot happen: lengths are verified
			h.f.fsys.opts.Logf("read %s: blob %s is %d bytes, shorter than the index says", h.f.path(), h.lay.ids[k].Short(), len(data))
			return nil, syscall.EIO
		}
		c := copy(dest[n:end-uint64(off)], data[skip:])
		n += c
		pos += uint64(c)
	}
	return fuse.ReadResultData(dest[:n]), 0
}

// readAhead starts background loads of the blobs after last when this read
// continues the previous one (it starts in the blob the previous read ended
// in, or the next; the kernel sends parallel reads slightly out of order), or
// starts the file. The window is ReadAhead bytes, at least one blob. Blobs
// already cached or on their way are skipped by the cache.
func (h *handle) readAhead(first, last int) {
	h.mu.Lock()
	seq := h.last < 0 && first == 0 || first >= h.last-1 && first <= h.last+1
	h.last = last
	h.mu.Unlock()
	if !seq {
		return
	}
	budget := h.f.fsys.opts.ReadAhead
	for k := last + 1; k < len(h.lay.ids) && k <= last+maxReadAheadBlobs; k++ {
		budget -= int64(h.lay.ends[k] - h.lay.start(k))
		if budget < 0 && k > last+1 {
			break
		}
		if !h.f.fsys.cache.startPrefetch(h.lay.ids[k], h.loader(k)) {
			break // the read-ahead queue is full
		}
	}
}

// loader returns the load of blob k, which records the blob's new location
// if it had moved.
func (h *handle) loader(k int) loadFunc {
	return func(ctx context.Context) ([]byte, error) {
		id, loc := h.lay.ids[k], h.lay.loc(k)
		data, now, err := h.f.fsys.loadBlob(ctx, pack.DataBlob, id, loc, true)
		if err != nil {
			return nil, err
		}
		if now != loc {
			h.lay.moved(id, now)
		}
		return data, nil
	}
}
