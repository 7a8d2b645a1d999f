package index

import (
	"math/rand"
	"os"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"snap/chunk"
	"snap/repo/pack"
)

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// TestCompactAfterRemoval fills an index, removes most of it as a prune
// would, and checks that Compact shrinks the file and keeps every entry.
func TestCompactAfterRemoval(t *testing.T) {
	r := rand.New(rand.NewSource(21))
	ix, path := tempIndex(t)
	var ids []chunk.ID
	var lists [][]pack.Blob
	for i := 0; i < 40; i++ {
		id, size, blobs := makePack(r, 500)
		mustAdd(t, ix, id, size, blobs)
		ids, lists = append(ids, id), append(lists, blobs)
	}
	if err := ix.RemovePacks(ids[:30]); err != nil {
		t.Fatal(err)
	}
	before := fileSize(t, path)
	res, err := ix.Compact()
	if err != nil {
		t.Fatal(err)
	}
	after := fileSize(t, path)
	if !res.Compacted || res.Before != before || res.After != after || after > before/2 {
		t.Fatalf("Compact = %+v; file %d → %d bytes; want compacted to less than half", res, before, after)
	}
	if _, err := os.Stat(path + ".compact"); !os.IsNotExist(err) {
		t.Fatalf("temporary file left behind: %v", err)
	}
	// Nothing more to gain now: the file is left alone.
	if res, err := ix.Compact(); err != nil || res.Compacted {
		t.Fatalf("second Compact = %+v, %v; want nothing done", res, err)
	}
	if got := fileSize(t, path); got != after {
		t.Fatalf("second Compact changed the file: %d → %d bytes", after, got)
	}
	wantStats(t, ix, 10, 10*500)
	for i := 30; i < 40; i++ {
		for _, b := range lists[i] {
			wantLocation(t, ix, ids[i], b)
		}
	}
	for _, b := range lists[0] {
		wantMissing(t, ix, b.ID)
	}
	// The compacted file takes new packs, with numbers never used before.
	id, size, blobs := makePack(r, 10)
	mustAdd(t, ix, id, size, blobs)
	wantLocation(t, ix, id, blobs[3])
	wantStats(t, ix, 11, 10*500+10)
	ix.Close()
	ix = openTest(t, path)
	wantLocation(t, ix, id, blobs[3])
}

// TestCompactWhileOthersWait has another handle (another process, as far
// as the file is concerned) wait for the lock while the file is renamed
// over: its commit must land in the new file, not in the replaced one.
func TestCompactWhileOthersWait(t *testing.T) {
	r := rand.New(rand.NewSource(22))
	ix, path := tempIndex(t)
	var ids []chunk.ID
	for i := 0; i < 20; i++ {
		id, size, blobs := makePack(r, 300)
		mustAdd(t, ix, id, size, blobs)
		ids = append(ids, id)
	}
	if err := ix.RemovePacks(ids[:18]); err != nil {
		t.Fatal(err)
	}
	other := openTest(t, path)
	other.timeout = 10 * time.Second
	newID, newSize, newBlobs := makePack(r, 5)
	added := make(chan error, 1)
	err := ix.update(func(tx *bolt.Tx) error {
		// other's commit now waits for our exclusive lock on the old file.
		go func() { added <- other.AddPack(newID, newSize, newBlobs) }()
		time.Sleep(300 * time.Millisecond)
		_, err := ix.copyTo(tx)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := <-added; err != nil {
		t.Fatal(err)
	}
	for _, h := range []*Index{ix, other} {
		wantLocation(t, h, newID, newBlobs[0])
		wantStats(t, h, 3, 2*300+5)
	}
}

// TestReadersShareAHandle checks that the views of a process that does not
// hold the index share one read-only handle for shareFor, that the handle
// is closed afterwards, and that a writer elsewhere gets its commit in.
func TestReadersShareAHandle(t *testing.T) {
	r := rand.New(rand.NewSource(24))
	writer, path := tempIndex(t)
	id, size, blobs := makePack(r, 20)
	mustAdd(t, writer, id, size, blobs)
	reader := openTest(t, path)
	reader.shareFor = 300 * time.Millisecond
	shared := func() *sharedDB {
		reader.smu.Lock()
		defer reader.smu.Unlock()
		return reader.shared
	}
	wantLocation(t, reader, id, blobs[0])
	first := shared()
	if first == nil {
		t.Fatal("no shared handle after a lookup")
	}
	for _, b := range blobs {
		wantLocation(t, reader, id, b)
	}
	if shared() != first {
		t.Fatal("lookups within shareFor opened another handle")
	}
	// The writer waits for the shared handle to expire, then commits.
	id2, size2, blobs2 := makePack(r, 5)
	mustAdd(t, writer, id2, size2, blobs2)
	reader.smu.Lock()
	users, closed := first.users, first.closed
	reader.smu.Unlock()
	if users != 0 || !closed {
		t.Fatalf("the first shared handle: %d users, closed %v; want closed once expired", users, closed)
	}
	wantLocation(t, reader, id2, blobs2[0])
	deadline := time.Now().Add(10 * time.Second)
	for shared() != nil {
		if time.Now().After(deadline) {
			t.Fatal("shared handle still open long after shareFor")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
