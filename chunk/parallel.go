package chunk

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
)

// Parallel cuts one large file into exactly the chunks a Chunker with the
// same Params would, with several goroutines looking for the cuts.
//
// Content-defined chunking is sequential: where a chunk ends depends on
// where it began. But the chunker forgets everything at a cut: after one, it
// skips MinSize-64 bytes and then cuts at the first position whose 64-byte
// window has the right fingerprint (or at MaxSize). So a chunker started at
// any offset, as if a cut were there, agrees with the sequential one from
// the first cut the two share, and two chains over the same bytes meet
// after a chunk or two. Parallel scans segments of the file, each from its
// own start and a little past its end, and follows the sequential chain
// from segment to segment where the lists meet. Where they do not (bytes so
// regular that the chains stay apart), it chunks sequentially from the last
// known cut until it meets a list again; the cuts are the same either way.
//
// Scanning finds cut offsets only; Next reads each chunk's bytes with
// ReadAt. It is not safe for concurrent use; Close stops the scanners.
type Parallel struct {
	r       io.ReaderAt
	size    int64
	p       Params
	segSize int64
	segs    []*segment
	ahead   int // segments scanned ahead of the one Next reads
	stop    chan struct{}
	wg      sync.WaitGroup

	mu      sync.Mutex
	moved   *sync.Cond // signalled when passed grows or stop closes
	passed  int        // segments Next has read past; guarded by mu
	stopped bool       // guarded by mu

	pos      int64 // offset of the next chunk; always a cut
	follow   int   // segment whose cut list the chain follows, or -1
	idx      int   // index in segs[follow].cuts of the next cut
	released int   // segments whose window token was given back
	fb       *Chunker
	fbBuf    []byte
	fbPos    int64
	err      error // sticky
}

type segment struct {
	ready chan struct{} // closed when cuts and err are set
	mu    sync.Mutex    // guards cuts while the segment is being scanned
	// cuts are the offsets where a chunker started at the segment's start
	// cuts, beginning with that start and ending with the file's size if the
	// scan reached it; the end of a scan that stopped short is not a cut.
	cuts []int64
	err  error
}

// NewParallel starts scanning the size bytes of r in segments of segSize
// bytes with workers goroutines, which start a segment only while it is
// fewer than 2 × workers segments ahead of the one Next reads. p must be valid; segSize is raised to 4 × MaxSize if
// smaller. Close must be called when done.
func NewParallel(r io.ReaderAt, size int64, p Params, workers int, segSize int64) *Parallel {
	segSize = max(segSize, 4*int64(p.MaxSize))
	workers = max(workers, 1)
	n := int(max((size+segSize-1)/segSize, 1))
	c := &Parallel{r: r, size: size, p: p, segSize: segSize, stop: make(chan struct{}),
		ahead: 2 * workers, segs: make([]*segment, n), idx: 1} // offset 0, segment 0's first entry, is a cut
	c.moved = sync.NewCond(&c.mu)
	for i := range c.segs {
		c.segs[i] = &segment{ready: make(chan struct{})}
	}
	todo := make(chan int)
	c.wg.Add(1 + workers)
	go func() {
		defer c.wg.Done()
		defer close(todo)
		for k := range c.segs {
			c.mu.Lock()
			for !c.stopped && k >= c.passed+c.ahead {
				c.moved.Wait()
			}
			stopped := c.stopped
			c.mu.Unlock()
			if stopped {
				return
			}
			select {
			case todo <- k:
			case <-c.stop:
				return
			}
		}
	}()
	for range workers {
		go func() {
			defer c.wg.Done()
			ch := NewChunker(p)
			buf := make([]byte, 0, p.MaxSize)
			for k := range todo {
				c.scan(ch, &buf, k)
			}
		}()
	}
	return c
}

// overrun is how far past its end a segment is scanned at most, for the
// chain coming from it to meet the next segment's list: two of the largest
// chunks, about eight typical ones. A scan stops as soon as it meets the
// next segment's cuts found so far, usually one or two chunks past its end.
func (c *Parallel) overrun() int64 { return 2 * int64(c.p.MaxSize) }

// scan finds the cuts of segment k.
func (c *Parallel) scan(ch *Chunker, buf *[]byte, k int) {
	s := c.segs[k]
	defer close(s.ready)
	start := int64(k) * c.segSize
	next := start + c.segSize
	end := min(c.size, next+c.overrun())
	ch.Reset(io.NewSectionReader(c.r, start, end-start))
	s.mu.Lock()
	s.cuts = append(s.cuts, start)
	s.mu.Unlock()
	pos := start
	for {
		select {
		case <-c.stop:
			s.err = errStopped
			return
		default:
		}
		data, err := ch.Next(*buf)
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			s.err = err
			return
		}
		pos += int64(len(data))
		if pos >= end && end < c.size {
			return // the end of the scan, not a cut
		}
		s.mu.Lock()
		s.cuts = append(s.cuts, pos)
		s.mu.Unlock()
		if pos >= next && k+1 < len(c.segs) && c.segs[k+1].hasCut(pos) {
			return // the chain goes on in the next segment's list
		}
	}
}

// hasCut reports whether off is among the cuts of s found so far.
func (s *segment) hasCut(off int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := slices.BinarySearch(s.cuts, off)
	return ok
}

var errStopped = errors.New("chunk: parallel chunker closed")

// Next returns the next chunk, stored in buf (grown if it is too small), or
// io.EOF after the last one. A file that turns out shorter than size ends
// early; one that grew is read to size.
func (c *Parallel) Next(buf []byte) ([]byte, error) {
	if c.err != nil {
		return nil, c.err
	}
	if c.pos >= c.size {
		return nil, io.EOF
	}
	cut, err := c.nextCut()
	if err != nil {
		c.err = err
		return nil, err
	}
	if cut <= c.pos || cut > c.size || cut-c.pos > int64(c.p.MaxSize) {
		c.err = fmt.Errorf("chunk: parallel chunker: cut at %d after %d", cut, c.pos)
		return nil, c.err
	}
	n := int(cut - c.pos)
	if cap(buf) < n {
		buf = make([]byte, 0, max(n, int(c.p.MaxSize)))
	}
	buf = buf[:n]
	m, err := c.r.ReadAt(buf, c.pos)
	if m < n {
		if err == nil || errors.Is(err, io.EOF) {
			// The file shrank: what was read is its last chunk.
			c.err = io.EOF
			if m == 0 {
				return nil, io.EOF
			}
			return buf[:m], nil
		}
		c.err = err
		return nil, err
	}
	c.pos = cut
	c.release()
	c.join()
	return buf, nil
}

// nextCut returns the cut after pos: from the followed list, or from the
// sequential chunker once that list has run out.
func (c *Parallel) nextCut() (int64, error) {
	if c.follow >= 0 {
		s := c.segs[c.follow]
		if err := c.wait(s); err != nil {
			return 0, err
		}
		if c.idx < len(s.cuts) {
			cut := s.cuts[c.idx]
			c.idx++
			return cut, nil
		}
		// The scan stopped short of the file's end before the chains met.
		c.follow = -1
		if c.fb == nil {
			c.fb = NewChunker(c.p)
			c.fbBuf = make([]byte, 0, c.p.MaxSize)
		}
		c.fb.Reset(io.NewSectionReader(c.r, c.pos, c.size-c.pos))
		c.fbPos = c.pos
	}
	data, err := c.fb.Next(c.fbBuf)
	if errors.Is(err, io.EOF) {
		return 0, io.EOF // the file ends before size: it shrank
	}
	if err != nil {
		return 0, err
	}
	c.fbPos += int64(len(data))
	return c.fbPos, nil
}

// join switches to the list of the segment pos lies in if pos is one of
// its cuts: from there on that list is the sequential chain.
func (c *Parallel) join() {
	k := min(int(c.pos/c.segSize), len(c.segs)-1)
	if k == c.follow {
		return
	}
	s := c.segs[k]
	if c.wait(s) != nil {
		return // keep going without it; a read error shows itself to Next
	}
	if i, ok := slices.BinarySearch(s.cuts, c.pos); ok {
		c.follow, c.idx = k, i+1
	}
}

// wait blocks until segment s is scanned.
func (c *Parallel) wait(s *segment) error {
	<-s.ready
	return s.err
}

// release tells the dispatcher how many segments pos has passed, letting
// the scanners start on later ones.
func (c *Parallel) release() {
	passed := int(c.pos / c.segSize)
	if passed <= c.released {
		return
	}
	c.released = passed
	c.mu.Lock()
	c.passed = passed
	c.mu.Unlock()
	c.moved.Broadcast()
}

// Close stops the scanners and waits for them.
func (c *Parallel) Close() {
	c.mu.Lock()
	if !c.stopped {
		c.stopped = true
		close(c.stop)
	}
	c.mu.Unlock()
	c.moved.Broadcast()
	c.wg.Wait()
}
