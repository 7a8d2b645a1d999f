package fusefs

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"

	"snap/chunk"
	"snap/snapshot"
)

// The mount itself is tested end to end in cmd/snap (mount_test.go); these
// tests cover the parts that need no FUSE: the blob cache and the layout of
// the directories above the snapshots.

func blobID(i int) chunk.ID { return chunk.Hash([]byte{byte(i), byte(i >> 8)}) }

func TestBlobCacheEvictsLeastRecentlyUsed(t *testing.T) {
	c := newBlobCache(context.Background(), 300, 2)
	ctx := context.Background()
	loads := 0
	get := func(i int) []byte {
		t.Helper()
		data, err := c.get(ctx, blobID(i), func(context.Context) ([]byte, error) {
			loads++
			return bytes.Repeat([]byte{byte(i)}, 100), nil
		})
		if err != nil || len(data) != 100 || data[0] != byte(i) {
			t.Fatalf("get %d: %v, %v", i, data, err)
		}
		return data
	}
	get(1)
	get(2)
	get(3)
	get(1) // 1 is now the most recent; 2 the least
	get(4) // evicts 2
	if loads != 4 {
		t.Fatalf("%d loads, want 4", loads)
	}
	get(1)
	get(3)
	get(4)
	if loads != 4 {
		t.Errorf("cached blobs were loaded again: %d loads", loads)
	}
	get(2)
	if loads != 5 {
		t.Errorf("evicted blob 2 was not loaded again: %d loads", loads)
	}
	if s := c.stats(); s.Used > 300 || s.Blobs != 3 || s.Loads != 5 || s.Hits != 4 || s.Misses != 5 {
		t.Errorf("cache stats %+v; want at most 300 bytes in 3 blobs, 5 loads, 4 hits, 5 misses", s)
	}
}

func TestBlobCacheTooLargeBlobNotKept(t *testing.T) {
	c := newBlobCache(context.Background(), 10, 1)
	data, err := c.get(context.Background(), blobID(1), func(context.Context) ([]byte, error) { return make([]byte, 11), nil })
	if err != nil || len(data) != 11 {
		t.Fatalf("get: %d bytes, %v", len(data), err)
	}
	if s := c.stats(); s.Blobs != 0 || s.Used != 0 {
		t.Errorf("a blob larger than the cache was kept: %+v", s)
	}
}

func TestBlobCacheLoadsOnceForConcurrentReaders(t *testing.T) {
	c := newBlobCache(context.Background(), 1<<20, 2)
	var loads atomic.Int32
	release := make(chan struct{})
	load := func(context.Context) ([]byte, error) {
		loads.Add(1)
		<-release
		return []byte("data"), nil
	}
	var wg sync.WaitGroup
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if data, err := c.get(context.Background(), blobID(1), load); err != nil || string(data) != "data" {
				t.Errorf("get: %q, %v", data, err)
			}
		}()
	}
	// A read-ahead of the same blob joins the load too.
	for !c.contains(blobID(1)) {
		time.Sleep(time.Millisecond)
	}
	c.startPrefetch(blobID(1), load)
	close(release)
	wg.Wait()
	if n := loads.Load(); n != 1 {
		t.Errorf("%d loads, want 1", n)
	}
}

func TestBlobCacheErrorsAreNotCached(t *testing.T) {
	c := newBlobCache(context.Background(), 1<<20, 1)
	fail := errors.New("pack gone")
	if _, err := c.get(context.Background(), blobID(1), func(context.Context) ([]byte, error) { return nil, fail }); !errors.Is(err, fail) {
		t.Fatalf("get: %v, want %v", err, fail)
	}
	data, err := c.get(context.Background(), blobID(1), func(context.Context) ([]byte, error) { return []byte("ok"), nil })
	if err != nil || string(data) != "ok" {
		t.Errorf("get after a failed load: %q, %v", data, err)
	}
}

func TestBlobCacheInterruptedReaderLeavesTheLoad(t *testing.T) {
	c := newBlobCache(context.Background(), 1<<20, 1)
	release := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() {
		_, err := c.get(ctx, blobID(1), func(context.Context) ([]byte, error) {
			<-release
			return []byte("late"), nil
		})
		done <- err
	}()
	for !c.contains(blobID(1)) {
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted get: %v, want context.Canceled", err)
	}
	close(release)
	// The load finishes and is cached for the retried read.
	deadline := time.Now().Add(5 * time.Second)
	for c.stats().Blobs != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the interrupted reader's load was not cached")
		}
		time.Sleep(time.Millisecond)
	}
	data, err := c.get(context.Background(), blobID(1), func(context.Context) ([]byte, error) {
		return nil, errors.New("loaded twice")
	})
	if err != nil || string(data) != "late" {
		t.Errorf("got %q, %v; want the interrupted load's bytes", data, err)
	}
}

func TestBlobCachePrefetchIsBounded(t *testing.T) {
	c := newBlobCache(context.Background(), 1<<30, 1)
	release := make(chan struct{})
	started := 0
	for i := 0; i < 2*maxQueuedPrefetch; i++ {
		if c.startPrefetch(blobID(i), func(context.Context) ([]byte, error) {
			<-release
			return []byte{1}, nil
		}) {
			started++
		}
	}
	if s := c.stats(); started != maxQueuedPrefetch || s.Prefetched != maxQueuedPrefetch {
		t.Errorf("%d read-ahead loads queued, want the limit %d", started, maxQueuedPrefetch)
	}
	close(release)
	deadline := time.Now().Add(5 * time.Second)
	for c.stats().Blobs != maxQueuedPrefetch {
		if time.Now().After(deadline) {
			t.Fatalf("read-ahead loads did not finish: %+v", c.stats())
		}
		time.Sleep(time.Millisecond)
	}
}

func TestViewLayout(t *testing.T) {
	at := time.Date(2026, 11, 30, 14, 5, 0, 0, time.Local)
	mk := func(b byte, tm time.Time, host string, tags ...string) *snapshot.Snapshot {
		var id chunk.ID
		id[0], id[31] = b, b
		return &snapshot.Snapshot{ID: id, Time: tm, Hostname: host, Tags: tags}
	}
	a := mk(0xa0, at, "laptop", "daily")
	b := mk(0xb0, at.Add(300*time.Millisecond), "laptop") // same second as a
	c := mk(0xc0, at.Add(time.Hour), "srv/1", "daily", "..")
	// Same short ID as c: ids/ must use the full IDs of both.
	d := mk(0xc0, at.Add(2*time.Hour), "")
	d.ID[31] = 0xd0
	v := buildView(map[chunk.ID]*snapshot.Snapshot{a.ID: a, b.ID: b, c.ID: c, d.ID: d})

	names := func(key string) []string {
		l := v.dirs[key]
		if l == nil {
			return nil
		}
		var out []string
		for _, e := range l.entries {
			out = append(out, e.name)
		}
		return out
	}
	link := func(key string) string {
		e, _ := v.dirs[key].lookup(latestName)
		return e.link
	}
	same := func(got, want []string) bool {
		if len(got) != len(want) {
			return false
		}
		for i := range got {
			if got[i] != want[i] {
				return false
			}
		}
		return true
	}
	ta := "2026-11-30T14:05:00"
	tb := ta + "-" + b.ID.Short()
	tc := "2026-11-30T15:05:00"
	td := "2026-11-30T16:05:00"
	for key, want := range map[string][]string{
		"":             {"hosts", "ids", "snapshots", "tags"},
		"snapshots":    {ta, tb, tc, td, "latest"},
		"ids":          {a.ID.Short(), b.ID.Short(), c.ID.String(), d.ID.String()},
		"hosts":        {"_", "laptop", "srv_1"},
		"hosts/laptop": {ta, tb, "latest"},
		"hosts/srv_1":  {tc, "latest"},
		"hosts/_":      {td, "latest"},
		"tags":         {"_..", "daily"},
		"tags/daily":   {ta, tc, "latest"},
	} {
		if got := names(key); !same(got, want) {
			t.Errorf("/%s: %v, want %v", key, got, want)
		}
	}
	for key, want := range map[string]string{"snapshots": td, "hosts/laptop": tb, "tags/daily": tc} {
		if got := link(key); got != want {
			t.Errorf("/%s/latest -> %q, want %q", key, got, want)
		}
	}
	if !v.dirs["snapshots"].mtime.Equal(d.Time) || !v.dirs["hosts/laptop"].mtime.Equal(b.Time) {
		t.Error("directories are not dated by their newest snapshot")
	}
	if e := buildView(nil); len(e.dirs["snapshots"].entries) != 0 || len(e.dirs[""].entries) != 4 {
		t.Errorf("empty repository: %+v", e.dirs)
	}
}

func TestEncodeDev(t *testing.T) {
	// The kernel's new_decode_dev of the 32-bit value must give back
	// major and minor.
	for _, c := range []struct{ major, minor uint32 }{{8, 1}, {1, 3}, {259, 65537}, {4095, 1<<20 - 1}} {
		v := encodeDev(uint64(c.major)<<8 | uint64(c.minor&0xff) | uint64(c.minor&^0xff)<<12)
		major, minor := (v&0xfff00)>>8, (v&0xff)|((v>>12)&0xfff00)
		if major != c.major || minor != c.minor {
			t.Errorf("%d:%d encodes to %#x, which decodes to %d:%d", c.major, c.minor, v, major, minor)
		}
	}
}

func TestFillAttr(t *testing.T) {
	n := &snapshot.Node{Type: snapshot.TypeFile, Mode: 0o4755, UID: 1, GID: 2, Size: 10000, Links: 3,
		MTime: time.Unix(100, 5), Holes: []snapshot.Hole{{Offset: 0, Length: 4096}}}
	var a fuse.Attr
	fillAttr(n, 77, &a)
	if a.Mode != 0o104755 || a.Uid != 1 || a.Gid != 2 || a.Size != 10000 || a.Nlink != 3 || a.Ino != 77 {
		t.Errorf("attr %+v", a)
	}
	if a.Blocks != (10000-4096+511)/512 {
		t.Errorf("blocks %d: holes must not count", a.Blocks)
	}
	if a.Mtime != 100 || a.Mtimensec != 5 || a.Atime != 100 || a.Ctime != 100 {
		t.Errorf("times %+v: atime and ctime fall back to mtime when not recorded", a)
	}
	var z fuse.Attr
	fillAttr(&snapshot.Node{Type: snapshot.TypeDir}, 5, &z)
	if z.Mtime != 0 || z.Nlink != 1 || z.Mode != 0o40000 {
		t.Errorf("unrecorded metadata: %+v", z)
	}
}
