package index

import (
	"math/rand"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Readers that open and close the index in a tight loop used to starve a
// committing writer (bbolt alone polls flock every 50 ms: 4 readers held a
// commit up for 20 s). With the intent bytes the writer gets in promptly,
// and back-to-back commits still let every reader through.
func TestNoStarvation(t *testing.T) {
	r := rand.New(rand.NewSource(14))
	path := filepath.Join(t.TempDir(), "index.db")
	writer := openTest(t, path)
	writer.timeout = 10 * time.Second
	if err := writer.Hold(); err != nil {
		t.Fatal(err)
	}
	id, size, blobs := makePack(r, 100)
	mustAdd(t, writer, id, size, blobs)

	const readers = 4
	var stop atomic.Bool
	var wg sync.WaitGroup
	var lookups [readers]atomic.Int64
	for i := range readers {
		rd := openTest(t, path)
		rd.timeout = 10 * time.Second
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				if _, _, err := rd.Lookup(blobs[0].ID); err != nil {
					t.Error(err)
					return
				}
				lookups[i].Add(1)
			}
		}()
	}
	start := time.Now()
	var slowest time.Duration
	for range 20 {
		id, size, blobs := makePack(r, 100)
		t0 := time.Now()
		if err := writer.AddPack(id, size, blobs); err != nil {
			t.Error(err)
			break
		}
		slowest = max(slowest, time.Since(t0))
	}
	elapsed := time.Since(start)
	stop.Store(true)
	wg.Wait()
	t.Logf("20 commits in %v (slowest %v) against %d looping readers", elapsed, slowest, readers)
	for i := range lookups {
		if lookups[i].Load() == 0 {
			t.Errorf("reader %d never got in", i)
		}
	}
	if slowest > 5*time.Second { // it was 20 s before the intent bytes
		t.Errorf("a commit waited %v for readers", slowest)
	}
}
