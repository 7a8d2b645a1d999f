package main

import (
	"math/rand"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestFilesChangingDuringBackup backs up a tree while other goroutines grow,
// shrink, rewrite and delete its files. Every snapshot must still be
// consistent: each file's recorded size equals its content (restore checks
// exactly that and fails otherwise), and the run exits 0 or 3.
func TestFilesChangingDuringBackup(t *testing.T) {
	src := filepath.Join(t.TempDir(), "busy")
	os.Mkdir(src, 0o755)
	const n = 400
	for i := 0; i < n; i++ {
		data := make([]byte, 1000+i*700)
		rand.New(rand.NewSource(int64(i))).Read(data)
		if err := os.WriteFile(filepath.Join(src, "f"+strconv.Itoa(i)), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	repo := filepath.Join(t.TempDir(), "repo")
	mustSnap(t, "init", "-r", repo)

	var stop atomic.Bool
	var wg sync.WaitGroup
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			r := rand.New(rand.NewSource(int64(100 + w)))
			buf := make([]byte, 256<<10)
			for !stop.Load() {
				p := filepath.Join(src, "f"+strconv.Itoa(r.Intn(n)))
				switch r.Intn(4) {
				case 0: // grow
					if f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0); err == nil {
						f.Write(buf[:r.Intn(len(buf))])
						f.Close()
					}
				case 1: // shrink
					os.Truncate(p, int64(r.Intn(4000)))
				case 2: // rewrite through a new file
					os.WriteFile(p+".tmp", buf[:r.Intn(len(buf))], 0o644)
					os.Rename(p+".tmp", p)
				case 3: // vanish and come back
					os.Remove(p)
					time.Sleep(time.Millisecond)
					os.WriteFile(p, buf[:r.Intn(1000)], 0o644)
				}
			}
		}(w)
	}
	for round := 0; round < 6; round++ {
		r := snap(t, "create", "-r", repo, "--json", src)
		if r.code != 0 && r.code != 3 {
			stop.Store(true)
			wg.Wait()
			t.Fatalf("create while files change: exit %d\n%s", r.code, r.stderr)
		}
	}
	stop.Store(true)
	wg.Wait()
	var list []map[string]any
	out := mustSnap(t, "snapshots", "-r", repo, "--json").stdout
	if err := jsonUnmarshal(out, &list); err != nil || len(list) != 6 {
		t.Fatalf("want 6 snapshots: %v %d", err, len(list))
	}
	for _, s := range list {
		id := s["short_id"].(string)
		target := t.TempDir()
		if r := snap(t, "restore", "-r", repo, id, "--target", target, "--verify"); r.code != 0 {
			t.Errorf("snapshot %s taken while files changed does not restore cleanly: exit %d\n%s", id, r.code, r.stderr)
		}
	}
	mustSnap(t, "check", "-r", repo, "--read-data")
}
