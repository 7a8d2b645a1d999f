package repo

import (
	"context"
	"errors"
	"io/fs"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"snap/chunk"
	"snap/internal/backend"
	"snap/internal/backend/local"
	"snap/repo/pack"
)

// pruneTestRepo creates a repository in a temporary directory and returns
// its directory.
func pruneTestRepo(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	r, err := Init(context.Background(), local.New(dir), testConfig(t), Options{IndexPath: filepath.Join(dir, "index.db")})
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	return dir
}

// testConfig returns the config of a new repository with the default
// chunk sizes and compression.
func testConfig(t *testing.T) Config {
	t.Helper()
	p, err := chunk.NewParams(chunk.DefaultMin, chunk.DefaultAvg, chunk.DefaultMax)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := NewConfig(p, CompressAuto)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// pruneTestOpen opens the repository at dir with the write lock held, as a
// new snap process would; the returned function releases both.
func pruneTestOpen(t *testing.T, dir string) (*Repository, func()) {
	t.Helper()
	ctx := context.Background()
	r, err := Open(ctx, local.New(dir), Options{IndexPath: filepath.Join(dir, "index.db")})
	if err != nil {
		t.Fatal(err)
	}
	unlock, err := r.Lock(ctx, backend.LockInfo{Host: "test", PID: 1, Command: "prune", Start: time.Now()}, 0)
	if err != nil {
		r.Close()
		t.Fatal(err)
	}
	return r, func() { unlock(); r.Close() }
}

func pruneTestData(seed uint64, n int) []byte {
	rng := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// pruneTestFiles lists the pack files in data/.
func pruneTestFiles(t *testing.T, dir string) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	err := filepath.WalkDir(filepath.Join(dir, "data"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			out[d.Name()] = true
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestPruneAfterInterruptedRepack is the in-process form of a data loss
// found by cmd/snap's TestPruneKill9: a prune writes the repacked pack N
// and is killed before its index commit; the next writer indexes N (its
// blobs stay located in the old pack P, so N holds no located blob and the
// next plan deletes it) and repacks P again into a pack with the same bytes,
// so the same name, as N. Prune must not delete the file it has just
// written: afterwards every used blob must load, and data/ must hold
// exactly the indexed packs.
func TestPruneAfterInterruptedRepack(t *testing.T) {
	ctx := context.Background()
	dir := pruneTestRepo(t)
	r, release := pruneTestOpen(t, dir)
	var ids []chunk.ID
	for i := range 3 {
		id, _, err := r.SaveBlob(ctx, pack.DataBlob, pruneTestData(uint64(i), 100<<10))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	used := BlobSet{}
	used.Add(ids[0])
	used.Add(ids[2]) // ids[1] is unused
	plan, err := r.PlanPrune(ctx, used, PruneOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Repack) != 1 || len(plan.Delete) != 0 {
		t.Fatalf("plan: repack %d, delete %d packs; want 1 and 0", len(plan.Repack), len(plan.Delete))
	}
	// The interrupted prune: the repack is written, nothing is committed.
	newPacks, _, err := r.writeUnindexed(ctx, func() error {
		return r.repackPack(ctx, plan.Repack[0], plan.usedByPack[plan.Repack[0].ID])
	})
	if err != nil || len(newPacks) != 1 {
		t.Fatalf("repack: %d new packs, %v", len(newPacks), err)
	}
	release()

	// The next prune, as a new process.
	r, release = pruneTestOpen(t, dir)
	defer release()
	plan, err = r.PlanPrune(ctx, used, PruneOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("second plan: delete %d packs, repack %d", len(plan.Delete), len(plan.Repack))
	if err := r.Prune(ctx, plan, nil); err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{0, 2} {
		if _, err := r.LoadBlob(ctx, pack.DataBlob, ids[i]); err != nil {
			t.Errorf("used blob %d after the prune: %v", i, err)
		}
	}
	packs, err := r.PackList()
	if err != nil {
		t.Fatal(err)
	}
	files := pruneTestFiles(t, dir)
	for _, p := range packs {
		if !files[p.ID.String()] {
			t.Errorf("pack %s is indexed but its file is gone (the interrupted prune had written %s)", p.ID.Short(), newPacks[0].ID.Short())
		}
	}
	if len(files) != len(packs) {
		t.Errorf("data/ holds %d packs, the index %d", len(files), len(packs))
	}
}

// TestSaveBlobAfterPrune stores a blob, prunes it away (no snapshot uses
// it) and stores the same bytes again through the same handle: the blob
// must then be in the repository. A handle remembers the blobs it stored so
// that it does not store them twice; a prune through that handle that
// deletes such a blob must make the handle forget it.
func TestSaveBlobAfterPrune(t *testing.T) {
	ctx := context.Background()
	dir := pruneTestRepo(t)
	r, release := pruneTestOpen(t, dir)
	defer release()
	data := pruneTestData(7, 50<<10)
	id, _, err := r.SaveBlob(ctx, pack.DataBlob, data)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	plan, err := r.PlanPrune(ctx, BlobSet{}, PruneOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Prune(ctx, plan, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := r.LoadBlob(ctx, pack.DataBlob, id); !errors.Is(err, ErrBlobMissing) {
		t.Fatalf("the pruned blob: %v, want %v", err, ErrBlobMissing)
	}
	_, n, err := r.SaveBlob(ctx, pack.DataBlob, data)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := r.LoadBlob(ctx, pack.DataBlob, id); err != nil {
		t.Errorf("SaveBlob of a blob this handle had stored and pruned stored %d bytes; loading it: %v", n, err)
	}
}

// TestMaxUnusedCountsUsedData checks that a --max-unused percentage is a
// share of the data that stays, as restic counts it, not of the repository
// before the prune (which tolerated more unused space than asked for).
func TestMaxUnusedCountsUsedData(t *testing.T) {
	ctx := context.Background()
	dir := pruneTestRepo(t)
	r, release := pruneTestOpen(t, dir)
	defer release()
	used := BlobSet{}
	var unused chunk.ID
	for p := 0; p < 2; p++ {
		for i := 0; i < 10; i++ {
			id, _, err := r.SaveBlob(ctx, pack.DataBlob, pruneTestData(uint64(100*p+i), 10<<10))
			if err != nil {
				t.Fatal(err)
			}
			if p == 1 && i == 0 {
				unused = id
				continue
			}
			used.Add(id)
		}
		if err := r.Flush(ctx); err != nil { // one pack each
			t.Fatal(err)
		}
	}
	// Unused: 10 KiB of 19 × 10 KiB used. 5.2 % of the used data is less
	// than 10 KiB; 5.2 % of the whole repository would be more.
	plan, err := r.PlanPrune(ctx, used, PruneOptions{MaxUnusedFraction: 0.052})
	if err != nil {
		t.Fatal(err)
	}
	if plan.Packs != 2 || len(plan.Repack) != 1 || plan.RemainingUnused != 0 {
		t.Fatalf("plan: %d packs, repack %d, %d bytes left unused; want 2 packs, the one with unused %s repacked", plan.Packs, len(plan.Repack), plan.RemainingUnused, unused.Short())
	}
	plan, err = r.PlanPrune(ctx, used, PruneOptions{MaxUnusedFraction: 0.06})
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Repack) != 0 || plan.RemainingUnused != 10<<10 {
		t.Fatalf("with 6 %%: repack %d, %d bytes left unused; want nothing repacked, 10 KiB left", len(plan.Repack), plan.RemainingUnused)
	}
}
