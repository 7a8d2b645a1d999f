package repo

import (
	"os"
	"path/filepath"

	"snap/chunk"
)

// fileCache keeps local copies of a remote repository's content-addressed
// files: tree blobs, so browsing does not fetch the same trees again, and
// snapshot documents, which every backup reads all of to find its parent
// (one round trip each). An entry is checked against its ID on every read,
// so a damaged one is dropped and fetched again; failing to write one is
// harmless. The zero value (no dir) caches nothing.
type fileCache struct {
	dir    string
	fanout bool // entries in subdirectories named by the ID's first two hex digits
}

func (c fileCache) path(id chunk.ID) string {
	s := id.String()
	if c.fanout {
		return filepath.Join(c.dir, s[:2], s)
	}
	return filepath.Join(c.dir, s)
}

// get returns the cached bytes of id, if they are there and verify.
func (c fileCache) get(id chunk.ID) ([]byte, bool) {
	if c.dir == "" {
		return nil, false
	}
	p := c.path(id)
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, false
	}
	if chunk.Hash(data) != id {
		os.Remove(p)
		return nil, false
	}
	return data, true
}

// put stores verified bytes under id. A temporary file renamed into place
// keeps a reader in another process from seeing a partial entry.
func (c fileCache) put(id chunk.ID, data []byte) {
	if c.dir == "" {
		return
	}
	p := c.path(id)
	if os.MkdirAll(filepath.Dir(p), 0o700) != nil {
		return
	}
	f, err := os.CreateTemp(filepath.Dir(p), ".tmp-*")
	if err != nil {
		return
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), p)
	}
	if err != nil {
		os.Remove(f.Name())
	}
}

func (c fileCache) remove(id chunk.ID) {
	if c.dir != "" {
		os.Remove(c.path(id))
	}
}

// keepOnly drops the entries (of a cache without fanout) whose IDs are not
// in ids: the snapshots other machines forgot.
func (c fileCache) keepOnly(ids []chunk.ID) {
	if c.dir == "" || c.fanout {
		return
	}
	entries, err := os.ReadDir(c.dir)
	if err != nil {
		return
	}
	keep := make(map[chunk.ID]bool, len(ids))
	for _, id := range ids {
		keep[id] = true
	}
	for _, e := range entries {
		if id, err := chunk.ParseID(e.Name()); err == nil && !keep[id] {
			os.Remove(filepath.Join(c.dir, e.Name()))
		}
	}
}
