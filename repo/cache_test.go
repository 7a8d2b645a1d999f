package repo

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"snap/chunk"
	"snap/index"
	"snap/internal/backend/local"
	"snap/repo/pack"
)

// TestSnapshotCache: documents written or read are kept in the cache and
// served from it; a damaged entry is fetched again; entries of snapshots the
// repository no longer lists, or that this handle removes, go.
func TestSnapshotCache(t *testing.T) {
	ctx := context.Background()
	dir := pruneTestRepo(t)
	cache := filepath.Join(t.TempDir(), "snapshots")
	r, err := Open(ctx, local.New(dir), Options{IndexPath: filepath.Join(dir, "index.db"), SnapshotCacheDir: cache})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	docs := [][]byte{[]byte(`{"n":1}`), []byte(`{"n":2}`), []byte(`{"n":3}`)}
	var ids []chunk.ID
	for _, d := range docs {
		id, err := r.SaveSnapshotFile(ctx, d)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	cached := func(id chunk.ID) bool {
		_, err := os.Stat(filepath.Join(cache, id.String()))
		return err == nil
	}
	for i, id := range ids {
		if !cached(id) {
			t.Fatalf("document %d not cached when written", i)
		}
	}
	load := func(i int) {
		t.Helper()
		got, err := r.LoadSnapshotFile(ctx, ids[i])
		if err != nil || string(got) != string(docs[i]) {
			t.Fatalf("load document %d: %q, %v; want %q", i, got, err, docs[i])
		}
	}

	// Served from the cache: the repository's copy of 0 is unreadable.
	repoCopy := filepath.Join(dir, "snapshots", ids[0].String())
	orig, err := os.ReadFile(repoCopy)
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(repoCopy, 0o600)
	if err := os.WriteFile(repoCopy, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	load(0)
	if err := os.WriteFile(repoCopy, orig, 0o400); err != nil {
		t.Fatal(err)
	}

	// A damaged or missing entry: fetched from the repository and cached again.
	if err := os.WriteFile(filepath.Join(cache, ids[1].String()), []byte(`{"n":9}`), 0o600); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(cache, ids[2].String()))
	load(1)
	load(2)
	if data, err := os.ReadFile(filepath.Join(cache, ids[1].String())); err != nil || string(data) != string(docs[1]) {
		t.Fatalf("damaged entry not replaced: %q, %v", data, err)
	}
	if !cached(ids[2]) {
		t.Fatal("document read from the repository was not cached")
	}

	// Forgotten elsewhere: dropped at the next listing. Removed here: at once.
	if err := os.Remove(filepath.Join(dir, "snapshots", ids[1].String())); err != nil {
		t.Fatal(err)
	}
	if _, err := r.SnapshotIDs(ctx); err != nil {
		t.Fatal(err)
	}
	if cached(ids[1]) {
		t.Fatal("entry of a snapshot the repository no longer lists was kept")
	}
	if err := r.RemoveSnapshotFile(ctx, ids[2]); err != nil {
		t.Fatal(err)
	}
	if cached(ids[2]) || !cached(ids[0]) {
		t.Fatalf("after removing document 2: cached 0 %v, 2 %v; want only 0", cached(ids[0]), cached(ids[2]))
	}
	if left, _ := filepath.Glob(filepath.Join(cache, ".tmp-*")); len(left) > 0 {
		t.Fatalf("temporary files left in the cache: %v", left)
	}
}

// TestTreeCacheServesLoadBlobAt: a tree read once, by ID or by location (a
// backup's walk reads its parent's trees by location), is read from the
// cache afterwards, even when the pack can no longer be read.
func TestTreeCacheServesLoadBlobAt(t *testing.T) {
	ctx := context.Background()
	dir := pruneTestRepo(t)
	cache := filepath.Join(t.TempDir(), "trees")
	r, err := Open(ctx, local.New(dir), Options{IndexPath: filepath.Join(dir, "index.db"), TreeCacheDir: cache})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { r.Close() }()
	trees := [][]byte{pruneTestData(5, 3000), pruneTestData(6, 5000)}
	var locs []index.Location
	for _, tr := range trees {
		if _, _, err := r.SaveBlob(ctx, pack.TreeBlob, tr); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	for i, tr := range trees {
		loc, ok, err := r.Index().Lookup(chunk.Hash(tr))
		if err != nil || !ok {
			t.Fatalf("tree %d: lookup %v, %v", i, ok, err)
		}
		locs = append(locs, loc)
	}
	if _, err := r.LoadBlobAt(ctx, locs[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := r.LoadBlob(ctx, pack.TreeBlob, chunk.Hash(trees[1])); err != nil {
		t.Fatal(err)
	}
	// The pack goes: both trees still load, by location and by ID, in a new
	// handle (a handle may keep packs it read open).
	if err := os.Remove(filepath.Join(dir, PackName(locs[0].Pack))); err != nil {
		t.Fatal(err)
	}
	r.Close()
	r, err = Open(ctx, local.New(dir), Options{IndexPath: filepath.Join(dir, "index.db"), TreeCacheDir: cache})
	if err != nil {
		t.Fatal(err)
	}
	for i, tr := range trees {
		for _, how := range []string{"location", "ID"} {
			var got []byte
			if how == "location" {
				got, err = r.LoadBlobAt(ctx, locs[i])
			} else {
				got, err = r.LoadBlob(ctx, pack.TreeBlob, chunk.Hash(tr))
			}
			if err != nil || !bytes.Equal(got, tr) {
				t.Fatalf("tree %d by %s after its pack went: %d bytes, %v; want it from the cache", i, how, len(got), err)
			}
		}
	}
}

// TestBypassCaches: check and repair read the repository's own bytes; a
// cached good copy must not hide a damaged tree or snapshot document.
func TestBypassCaches(t *testing.T) {
	ctx := context.Background()
	dir := pruneTestRepo(t)
	opts := Options{IndexPath: filepath.Join(dir, "index.db"),
		TreeCacheDir: filepath.Join(t.TempDir(), "trees"), SnapshotCacheDir: filepath.Join(t.TempDir(), "snapshots")}
	r, err := Open(ctx, local.New(dir), opts)
	if err != nil {
		t.Fatal(err)
	}
	tree := pruneTestData(7, 4000)
	if _, _, err := r.SaveBlob(ctx, pack.TreeBlob, tree); err != nil {
		t.Fatal(err)
	}
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	snapID, err := r.SaveSnapshotFile(ctx, []byte(`{"n":1}`))
	if err != nil {
		t.Fatal(err)
	}
	loc, ok, err := r.Index().Lookup(chunk.Hash(tree))
	if err != nil || !ok {
		t.Fatalf("lookup: %v, %v", ok, err)
	}
	if _, err := r.LoadBlobAt(ctx, loc); err != nil { // now cached
		t.Fatal(err)
	}
	r.Close()

	// Damage both in the repository; the caches keep their good copies.
	for _, p := range []string{filepath.Join(dir, PackName(loc.Pack)), filepath.Join(dir, "snapshots", snapID.String())} {
		if err := os.Chmod(p, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("garbage, not what was stored"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	r, err = Open(ctx, local.New(dir), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { r.Close() }()
	if _, err := r.LoadBlobAt(ctx, loc); err != nil {
		t.Fatalf("tree through the cache: %v; want the cached copy", err)
	}
	r.BypassCaches()
	if _, err := r.LoadBlobAt(ctx, loc); err == nil {
		t.Fatal("tree read past the cache: no error from the damaged pack")
	}
	if _, err := r.LoadBlob(ctx, pack.TreeBlob, chunk.Hash(tree)); err == nil {
		t.Fatal("tree by ID past the cache: no error from the damaged pack")
	}
	if _, err := r.LoadSnapshotFile(ctx, snapID); err == nil {
		t.Fatal("snapshot document past the cache: no error for the damaged one")
	}
}
