package index

import (
	"math/rand"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestExpStarvation(t *testing.T) {
	for _, readers := range []int{1, 2, 4} {
		r := rand.New(rand.NewSource(6))
		path := filepath.Join(t.TempDir(), "index.db")
		writer := openTest(t, path)
		writer.timeout = 60 * time.Second
		writer.Hold()
		id, size, blobs := makePack(r, 100)
		mustAdd(t, writer, id, size, blobs)
		var stop atomic.Bool
		var wg sync.WaitGroup
		var lookups atomic.Int64
		for i := 0; i < readers; i++ {
			rd := openTest(t, path)
			wg.Add(1)
			go func() {
				defer wg.Done()
				for !stop.Load() {
					if _, _, err := rd.Lookup(blobs[0].ID); err != nil {
						t.Error(err)
						return
					}
					lookups.Add(1)
				}
			}()
		}
		var commits []time.Duration
		deadline := time.Now().Add(5 * time.Second)
		for i := 0; i < 20 && time.Now().Before(deadline); i++ {
			id, size, blobs := makePack(r, 100)
			start := time.Now()
			if err := writer.AddPack(id, size, blobs); err != nil {
				t.Fatal(err)
			}
			commits = append(commits, time.Since(start))
		}
		stop.Store(true)
		wg.Wait()
		slices.Sort(commits)
		t.Logf("readers %d: %d commits, median %v max %v, lookups %d", readers, len(commits), commits[len(commits)/2], commits[len(commits)-1], lookups.Load())
	}
}
