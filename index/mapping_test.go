package index

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"snap/chunk"
	"snap/repo/pack"
)

// mappedKiB returns the resident KiB of this process's mappings of the file
// at path, from /proc/self/smaps.
func mappedKiB(t *testing.T, path string) int {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Skipf("no /proc/self/smaps: %v", err)
	}
	defer f.Close()
	total, inFile := 0, false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 5 && strings.Contains(fields[0], "-") && !strings.HasSuffix(fields[0], ":") {
			// A mapping's header: range perms offset dev inode [path].
			ino, _ := strconv.ParseUint(fields[4], 10, 64)
			inFile = ino == st.Ino
			continue
		}
		if inFile && len(fields) == 3 && fields[0] == "Rss:" {
			n, _ := strconv.Atoi(fields[1])
			total += n
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return total
}

// fillIndex adds packs of 500 random blobs until the index holds n blobs,
// and returns their IDs.
func fillIndex(t *testing.T, ix *Index, r *rand.Rand, n int) []chunk.ID {
	t.Helper()
	var ids []chunk.ID
	for len(ids) < n {
		id, size, blobs := makePack(r, min(500, n-len(ids)))
		mustAdd(t, ix, id, size, blobs)
		for _, b := range blobs {
			ids = append(ids, b.ID)
		}
	}
	return ids
}

// TestHeldPagesDropped checks that the held handle of a large index unmaps
// its pages every dropEvery keys looked up, counting every key of a
// LookupMany, and that a small index keeps them (and is just as correct).
func TestHeldPagesDropped(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("pages are dropped on Linux only")
	}
	r := rand.New(rand.NewSource(31))
	ix, path := tempIndex(t)
	ids := fillIndex(t, ix, r, 40_000) // about 4 MiB of pages
	lookupAll := func() {
		t.Helper()
		found := 0
		err := ix.LookupMany(ids, func(i int, loc Location, ok bool) error {
			if ok && loc.ID == ids[i] {
				found++
			}
			return nil
		})
		if err != nil || found != len(ids) {
			t.Fatalf("LookupMany: %d of %d found, %v", found, len(ids), err)
		}
		for _, id := range ids[:300] {
			if _, ok, err := ix.Lookup(id); !ok || err != nil {
				t.Fatalf("Lookup(%s) = %v, %v", id.Short(), ok, err)
			}
		}
	}

	// Small: the mapping is kept, and covers most of the file.
	if err := ix.Hold(); err != nil {
		t.Fatal(err)
	}
	lookupAll()
	kept := mappedKiB(t, path)
	if ix.drops.Load() != 0 {
		t.Fatalf("the held handle of a %d-byte index dropped its pages %d times", fileSize(t, path), ix.drops.Load())
	}
	if err := ix.Release(); err != nil {
		t.Fatal(err)
	}

	// Large: dropped every 8 keys.
	ix.tune.dropAbove, ix.tune.dropEvery = 0, 8
	if err := ix.Hold(); err != nil {
		t.Fatal(err)
	}
	lookupAll()
	dropped := mappedKiB(t, path)
	want := int64(len(ids)+300) / 8
	if n := ix.drops.Load(); n < want {
		t.Fatalf("%d drops after %d keys, want %d", n, len(ids)+300, want)
	}
	t.Logf("mapped after all lookups: %d KiB kept, %d KiB with drops; file %d KiB", kept, dropped, fileSize(t, path)>>10)
	if dropped*3 > kept {
		t.Fatalf("with drops %d KiB of index.db stayed mapped, without %d KiB", dropped, kept)
	}
	if err := ix.Release(); err != nil {
		t.Fatal(err)
	}
}

// indexWithPack returns a new index holding one pack of n random blobs, and
// the random source that made it, for more.
func indexWithPack(t *testing.T, seed int64, n int) (*Index, *rand.Rand, chunk.ID, []pack.Blob) {
	t.Helper()
	r := rand.New(rand.NewSource(seed))
	ix, _ := tempIndex(t)
	id, size, blobs := makePack(r, n)
	mustAdd(t, ix, id, size, blobs)
	return ix, r, id, blobs
}

// TestBatchedAdd checks that adding to a large index commits in batches,
// drops the writer's pages between them, and ends with the same contents
// as one transaction: every blob found, a blob given twice kept once with
// its copy remembered, no adding key left.
func TestBatchedAdd(t *testing.T) {
	ix, r, idA, blobsA := indexWithPack(t, 32, 20)
	ix.tune.batchAbove, ix.tune.addBatch = 0, 7
	var batches []int
	ix.afterBatch = func(done int) error { batches = append(batches, done); return nil }

	idB, sizeB, blobsB := makePack(r, 60)
	blobsB[10].ID = blobsA[3].ID // stored twice
	idC, sizeC, blobsC := makePack(r, 45)
	if err := ix.AddPacks([]PackInfo{{idB, sizeB, len(blobsB)}, {idC, sizeC, len(blobsC)}}, [][]pack.Blob{blobsB, blobsC}); err != nil {
		t.Fatal(err)
	}
	if want := (105 + 6) / 7; len(batches) != want || batches[len(batches)-1] != 105 {
		t.Fatalf("batches after %v blobs, want %d ending at 105", batches, want)
	}
	if ix.drops.Load() < int64(len(batches)) {
		t.Fatalf("%d drops for %d batches", ix.drops.Load(), len(batches))
	}
	wantStats(t, ix, 3, 20+60+45-1)
	for _, b := range blobsA {
		wantLocation(t, ix, idA, b)
	}
	for i, b := range blobsB {
		if i != 10 {
			wantLocation(t, ix, idB, b)
		}
	}
	for _, b := range blobsC {
		wantLocation(t, ix, idC, b)
	}
	wantNoAdding(t, ix)
	// The copy in B stands in once A is gone.
	if err := ix.RemovePacks([]chunk.ID{idA}); err != nil {
		t.Fatal(err)
	}
	wantLocation(t, ix, idB, blobsB[10])

	// A pack already listed changes nothing, and a single batch is one
	// transaction.
	batches = nil
	if err := ix.AddPack(idC, sizeC, blobsC); err != nil {
		t.Fatal(err)
	}
	if len(batches) != 0 {
		t.Fatalf("re-adding a listed pack wrote batches %v", batches)
	}
}

// TestBatchedAddFails checks that a batched add that fails halfway takes
// its packs out of the index again at once, and that they can be added later.
func TestBatchedAddFails(t *testing.T) {
	ix, r, idA, blobsA := indexWithPack(t, 35, 20)
	ix.tune.batchAbove, ix.tune.addBatch = 0, 7
	errDisk := errors.New("disk full")
	ix.afterBatch = func(done int) error {
		if done == 14 {
			return errDisk
		}
		return nil
	}
	idB, sizeB, blobsB := makePack(r, 50)
	if err := ix.AddPack(idB, sizeB, blobsB); !errors.Is(err, errDisk) {
		t.Fatalf("AddPack = %v, want the batch's error", err)
	}
	wantBackedOut(t, ix, idA, blobsA, idB, blobsB)
	ix.afterBatch = nil
	mustAdd(t, ix, idB, sizeB, blobsB)
	wantStats(t, ix, 2, 70)
	for _, b := range blobsB {
		wantLocation(t, ix, idB, b)
	}
}

// wantBackedOut checks that the index holds pack A whole and nothing of
// pack B, whose add failed or was killed, and no adding key.
func wantBackedOut(t *testing.T, ix *Index, idA chunk.ID, blobsA []pack.Blob, idB chunk.ID, blobsB []pack.Blob) {
	t.Helper()
	wantNoAdding(t, ix)
	wantStats(t, ix, 1, len(blobsA))
	for _, b := range blobsA {
		wantLocation(t, ix, idA, b)
	}
	if found, err := ix.HasPack(idB); found || err != nil {
		t.Fatalf("HasPack(backed-out pack) = %v, %v", found, err)
	}
	for _, b := range blobsB {
		wantMissing(t, ix, b.ID)
	}
}

func wantNoAdding(t *testing.T, ix *Index) {
	t.Helper()
	err := ix.view(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketMeta).Get(keyAdding); v != nil {
			return fmt.Errorf("meta %s left: %d bytes", keyAdding, len(v))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestBatchedAddKilled kills a process (this test binary again) with
// SIGKILL in the middle of a batched add and checks what the next Open
// makes of it: the half-added pack is gone with all its blobs, the generation
// is new, everything else is intact, and the pack can be added again.
func TestBatchedAddKilled(t *testing.T) {
	r := rand.New(rand.NewSource(33))
	path := filepath.Join(t.TempDir(), "index.db")
	ix := openTest(t, path)
	idA, sizeA, blobsA := makePack(r, 30)
	mustAdd(t, ix, idA, sizeA, blobsA)
	gen, err := ix.Generation()
	if err != nil {
		t.Fatal(err)
	}
	if err := ix.Close(); err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command(os.Args[0], "-test.run=^TestBatchedAddVictim$", "-test.v")
	cmd.Env = append(os.Environ(), "SNAP_INDEX_VICTIM="+path)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	t.Logf("victim:\n%s", out.Bytes())
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("victim ended with %v, want killed by SIGKILL", err)
	}

	// What the victim left, before any recovery: pack B listed, some of
	// its blobs indexed, adding set.
	db, err := bolt.Open(path, fileMode, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	var idB chunk.ID
	err = db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketMeta).Get(keyAdding)
		if len(v) != chunk.IDSize {
			return fmt.Errorf("meta %s is %d bytes after the kill, want one pack ID", keyAdding, len(v))
		}
		copy(idB[:], v)
		if tx.Bucket(bucketPacks).Get(idB[:]) == nil {
			return fmt.Errorf("pack %s not listed after the kill", idB.Short())
		}
		if n := tx.Bucket(bucketBlobs).Stats().KeyN; n <= 30 || n >= 30+100 {
			return fmt.Errorf("%d blobs after the kill, want some of the victim's 100", n)
		}
		return nil
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}

	ix = openTest(t, path)
	_, sizeB, blobsB := victimPack()
	wantBackedOut(t, ix, idA, blobsA, idB, blobsB)
	if g, err := ix.Generation(); err != nil || g == gen {
		t.Fatalf("generation %s after removing a pack (was %s), %v", g, gen, err)
	}
	// The victim's pack, made again from the same seed, is added whole.
	mustAdd(t, ix, idB, sizeB, blobsB)
	wantStats(t, ix, 2, 130)
	for _, b := range blobsB {
		wantLocation(t, ix, idB, b)
	}
}

// victimPack is the pack TestBatchedAddVictim adds.
func victimPack() (chunk.ID, int64, []pack.Blob) {
	return makePack(rand.New(rand.NewSource(34)), 100)
}

// TestBatchedAddVictim is run by TestBatchedAddKilled: it adds a pack of 100
// blobs in batches of 10 and kills itself after the third.
func TestBatchedAddVictim(t *testing.T) {
	path := os.Getenv("SNAP_INDEX_VICTIM")
	if path == "" {
		t.Skip("run by TestBatchedAddKilled")
	}
	ix := openTest(t, path)
	ix.tune.batchAbove, ix.tune.addBatch = 0, 10
	ix.afterBatch = func(done int) error {
		if done == 30 {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {} // the signal is on its way
		}
		return nil
	}
	id, size, blobs := victimPack()
	err := ix.AddPack(id, size, blobs)
	t.Fatalf("AddPack returned %v instead of being killed", err)
}

// TestLookupsDuringWrite checks that this process's lookups go on while a
// write holds the file, reading the last commit through the write's handle
// (and dropping its pages, the index being "large"), and that the held
// handle is back afterwards.
func TestLookupsDuringWrite(t *testing.T) {
	ix, r, idA, blobsA := indexWithPack(t, 36, 20)
	if err := ix.Hold(); err != nil {
		t.Fatal(err)
	}
	ix.tune.batchAbove, ix.tune.addBatch = 0, 10
	ix.tune.dropAbove, ix.tune.dropEvery = 0, 1
	lookups := 0
	ix.afterBatch = func(done int) error {
		drops := ix.drops.Load()
		defer func() {
			if ix.drops.Load() == drops {
				t.Errorf("a lookup after batch %d did not drop the write handle's pages", done)
			}
		}()
		res := make(chan error, 1)
		go func() {
			loc, found, err := ix.Lookup(blobsA[done%20].ID)
			if err == nil && (!found || loc.Pack != idA) {
				err = fmt.Errorf("blob of pack A: found %v in %s", found, loc.Pack.Short())
			}
			res <- err
		}()
		select {
		case err := <-res:
			lookups++
			return err
		case <-time.After(10 * time.Second):
			return errors.New("a lookup waited for the write to end")
		}
	}
	idB, sizeB, blobsB := makePack(r, 50)
	if err := ix.AddPack(idB, sizeB, blobsB); err != nil {
		t.Fatal(err)
	}
	if lookups != 5 {
		t.Fatalf("%d lookups during the write, want one per batch (5)", lookups)
	}
	ix.mu.RLock()
	held := ix.held != nil && ix.lent == nil
	ix.mu.RUnlock()
	if !held {
		t.Fatal("the held handle was not reopened after the write")
	}
	for _, b := range blobsB {
		wantLocation(t, ix, idB, b)
	}
}
