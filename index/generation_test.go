package index

import (
	"encoding/hex"
	"math/rand"
	"testing"

	bolt "go.etcd.io/bbolt"

	"snap/chunk"
	"snap/repo/pack"
)

func generation(t *testing.T, ix *Index) string {
	t.Helper()
	g, err := ix.Generation()
	if err != nil {
		t.Fatal(err)
	}
	if b, err := hex.DecodeString(g); err != nil || len(b) != 16 {
		t.Fatalf("Generation() = %q, want 32 hex digits", g)
	}
	return g
}

// TestGeneration checks the promise create relies on: the generation stays
// the same while blobs are only added, and changes whenever a pack (and so
// blobs) leaves the index.
func TestGeneration(t *testing.T) {
	r := rand.New(rand.NewSource(31))
	ix, path := tempIndex(t)
	g0 := generation(t, ix)
	var ids []chunk.ID
	for i := 0; i < 8; i++ {
		id, size, blobs := makePack(r, 400)
		mustAdd(t, ix, id, size, blobs)
		ids = append(ids, id)
	}
	if g := generation(t, ix); g != g0 {
		t.Fatalf("adding packs changed the generation %s to %s", g0, g)
	}
	if err := ix.RemovePacks([]chunk.ID{randID(r)}); err != nil { // not indexed: nothing removed
		t.Fatal(err)
	}
	if g := generation(t, ix); g != g0 {
		t.Fatalf("removing no pack changed the generation")
	}
	if err := ix.RemovePacks(ids[:6]); err != nil {
		t.Fatal(err)
	}
	g1 := generation(t, ix)
	if g1 == g0 {
		t.Fatalf("removing packs left the generation at %s", g0)
	}
	id, size, blobs := makePack(r, 2)
	if err := ix.ReplacePacks(ids[6:7], []PackInfo{{id, size, 2}}, [][]pack.Blob{blobs}); err != nil {
		t.Fatal(err)
	}
	g2 := generation(t, ix)
	if g2 == g1 {
		t.Fatalf("a repack left the generation at %s", g1)
	}
	// Compaction copies the entries unchanged, the generation with them.
	if res, err := ix.Compact(); err != nil || !res.Compacted {
		t.Fatalf("Compact = %+v, %v; want it compacted", res, err)
	}
	if g := generation(t, ix); g != g2 {
		t.Fatalf("compaction changed the generation %s to %s", g2, g)
	}
	// Reopened, the same.
	ix.Close()
	ix = openTest(t, path)
	if g := generation(t, ix); g != g2 {
		t.Fatalf("after reopening: generation %s, want %s", g, g2)
	}

	// An index written before generations existed gets one, once.
	ix.Close()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Delete(keyGeneration) }); err != nil {
		t.Fatal(err)
	}
	db.Close()
	ix = openTest(t, path)
	g3 := generation(t, ix)
	if g3 == g2 {
		t.Fatalf("an index without a generation got the old one back")
	}
	if g := generation(t, ix); g != g3 {
		t.Fatalf("generation %s, then %s: want it kept", g3, g)
	}
}

// TestNewIndexesDiffer: two new index files never share a generation, so a
// rebuilt index (repair index) never vouches for a snapshot of the old one.
func TestNewIndexesDiffer(t *testing.T) {
	a, _ := tempIndex(t)
	b, _ := tempIndex(t)
	if generation(t, a) == generation(t, b) {
		t.Fatal("two new indexes have the same generation")
	}
}
