package local

import (
	"io"
	"os"
	"sync"
)

// openFiles keeps recently read pack files open: a restore of many small
// files reads one blob at a time from the same few packs, and opening the
// pack for every blob cost two syscalls per blob. Packs never change once
// written, so a cached handle always reads the right bytes (even after a
// prune deleted the name, the handle still reads what was there).
type openFiles struct {
	mu    sync.Mutex
	files map[string]*sharedFile
	order []string // oldest first, for eviction
}

// maxOpenFiles bounds the handles kept open.
const maxOpenFiles = 32

type sharedFile struct {
	f       *os.File
	refs    int
	evicted bool
}

func (c *openFiles) get(p string) (*sharedFile, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if sf, ok := c.files[p]; ok {
		sf.refs++
		return sf, nil
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	if c.files == nil {
		c.files = map[string]*sharedFile{}
	}
	sf := &sharedFile{f: f, refs: 1}
	c.files[p] = sf
	c.order = append(c.order, p)
	for len(c.order) > maxOpenFiles {
		old := c.order[0]
		c.order = c.order[1:]
		c.dropLocked(old)
	}
	return sf, nil
}

func (c *openFiles) release(sf *sharedFile) {
	c.mu.Lock()
	defer c.mu.Unlock()
	sf.refs--
	if sf.evicted && sf.refs == 0 {
		sf.f.Close()
	}
}

// forget drops p, as when it is removed.
func (c *openFiles) forget(p string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dropLocked(p)
	for i, q := range c.order {
		if q == p {
			c.order = append(c.order[:i], c.order[i+1:]...)
			break
		}
	}
}

func (c *openFiles) dropLocked(p string) {
	sf, ok := c.files[p]
	if !ok {
		return
	}
	delete(c.files, p)
	sf.evicted = true
	if sf.refs == 0 {
		sf.f.Close()
	}
}

// sectionReader reads a range of a shared file and releases it on Close.
type sectionReader struct {
	*io.SectionReader
	c    *openFiles
	sf   *sharedFile
	once sync.Once
}

func (r *sectionReader) Close() error {
	r.once.Do(func() { r.c.release(r.sf) })
	return nil
}
