package index

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"snap/chunk"
	"snap/repo/pack"
)

const testRepo = "5c0d000000000000000000000000000000000000000000000000000000000001"

func randID(r *rand.Rand) chunk.ID {
	var id chunk.ID
	r.Read(id[:])
	return id
}

// makePack returns a plausible pack of n random blobs.
func makePack(r *rand.Rand, n int) (chunk.ID, int64, []pack.Blob) {
	blobs := make([]pack.Blob, n)
	var off uint64
	for i := range blobs {
		l := uint32(r.Intn(1<<20) + 1)
		blobs[i] = pack.Blob{
			Type:        pack.BlobType(r.Intn(2)),
			Compression: pack.Zstd,
			ID:          randID(r),
			Offset:      off,
			Length:      l,
			RawLength:   l + uint32(r.Intn(1000)),
			Checksum:    r.Uint64(),
		}
		off += uint64(l)
	}
	return randID(r), int64(off) + int64(n)*pack.EntrySize + pack.FooterSize, blobs
}

func openTest(t testing.TB, path string) *Index {
	t.Helper()
	ix, err := Open(path, testRepo)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ix.Close() })
	return ix
}

func tempIndex(t testing.TB) (*Index, string) {
	path := filepath.Join(t.TempDir(), "index.db")
	return openTest(t, path), path
}

func mustAdd(t testing.TB, ix *Index, id chunk.ID, size int64, blobs []pack.Blob) {
	t.Helper()
	if err := ix.AddPack(id, size, blobs); err != nil {
		t.Fatal(err)
	}
}

func wantLocation(t testing.TB, ix *Index, packID chunk.ID, b pack.Blob) {
	t.Helper()
	loc, found, err := ix.Lookup(b.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !found {
		t.Fatalf("blob %s not found", b.ID.Short())
	}
	if want := (Location{Pack: packID, Blob: b}); loc != want {
		t.Fatalf("Lookup(%s) = %+v, want %+v", b.ID.Short(), loc, want)
	}
}

func wantMissing(t testing.TB, ix *Index, id chunk.ID) {
	t.Helper()
	_, found, err := ix.Lookup(id)
	if err != nil || found {
		t.Fatalf("Lookup(%s) = found %v, %v; want missing", id.Short(), found, err)
	}
}

func wantStats(t testing.TB, ix *Index, packs, blobs int) {
	t.Helper()
	p, b, err := ix.Stats()
	if err != nil || p != packs || b != blobs {
		t.Fatalf("Stats = %d packs, %d blobs, %v; want %d, %d", p, b, err, packs, blobs)
	}
}

func TestAddLookup(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	ix, _ := tempIndex(t)
	wantStats(t, ix, 0, 0)
	idA, sizeA, blobsA := makePack(r, 10)
	idB, sizeB, blobsB := makePack(r, 5)
	mustAdd(t, ix, idA, sizeA, blobsA)
	mustAdd(t, ix, idB, sizeB, blobsB)
	for _, b := range blobsA {
		wantLocation(t, ix, idA, b)
	}
	for _, b := range blobsB {
		wantLocation(t, ix, idB, b)
	}
	miss := randID(r)
	wantMissing(t, ix, miss)
	wantStats(t, ix, 2, 15)

	for _, id := range []chunk.ID{idA, idB} {
		if ok, err := ix.HasPack(id); !ok || err != nil {
			t.Fatalf("HasPack(%s) = %v, %v", id.Short(), ok, err)
		}
	}
	if ok, err := ix.HasPack(miss); ok || err != nil {
		t.Fatalf("HasPack(unknown) = %v, %v", ok, err)
	}

	// LookupMany: hits, a miss and a duplicate, each reported at its index.
	ids := []chunk.ID{blobsB[3].ID, miss, blobsA[0].ID, blobsA[7].ID, blobsB[3].ID}
	want := []Location{{idB, blobsB[3]}, {}, {idA, blobsA[0]}, {idA, blobsA[7]}, {idB, blobsB[3]}}
	seen := make([]bool, len(ids))
	err := ix.LookupMany(ids, func(i int, loc Location, found bool) error {
		if seen[i] {
			t.Errorf("index %d reported twice", i)
		}
		seen[i] = true
		if found != (i != 1) || loc != want[i] {
			t.Errorf("index %d: got %+v found %v, want %+v", i, loc, found, want[i])
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(seen, false) {
		t.Fatalf("not every index reported: %v", seen)
	}
	stop := errors.New("stop")
	calls := 0
	err = ix.LookupMany(ids, func(int, Location, bool) error { calls++; return stop })
	if !errors.Is(err, stop) || calls != 1 {
		t.Fatalf("LookupMany with failing callback: %v after %d calls", err, calls)
	}

	var packs []PackInfo
	if err := ix.Packs(func(p PackInfo) error { packs = append(packs, p); return nil }); err != nil {
		t.Fatal(err)
	}
	wantPacks := []PackInfo{{idA, sizeA, 10}, {idB, sizeB, 5}}
	slices.SortFunc(wantPacks, func(a, b PackInfo) int { return compareIDs(a.ID, b.ID) })
	if !slices.Equal(packs, wantPacks) {
		t.Fatalf("Packs = %+v, want %+v", packs, wantPacks)
	}

	var locs []Location
	if err := ix.Blobs(func(l Location) error { locs = append(locs, l); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(locs) != 15 || !slices.IsSortedFunc(locs, func(a, b Location) int { return compareIDs(a.ID, b.ID) }) {
		t.Fatalf("Blobs returned %d locations, sorted: %v", len(locs), slices.IsSortedFunc(locs, func(a, b Location) int { return compareIDs(a.ID, b.ID) }))
	}
	for _, l := range locs {
		wantLocation(t, ix, l.Pack, l.Blob)
	}
}

func TestAddPackIdempotent(t *testing.T) {
	r := rand.New(rand.NewSource(2))
	ix, _ := tempIndex(t)
	idA, sizeA, blobsA := makePack(r, 4)
	mustAdd(t, ix, idA, sizeA, blobsA)
	mustAdd(t, ix, idA, sizeA, blobsA)
	wantStats(t, ix, 1, 4)

	// Pack B repeats a blob of A (two writers raced) and one of its own.
	idB, sizeB, blobsB := makePack(r, 3)
	dup := blobsA[2]
	dup.Offset = blobsB[1].Offset
	blobsB[1] = dup
	twice := blobsB[2]
	twice.Offset += 7
	blobsB = append(blobsB, twice)
	mustAdd(t, ix, idB, sizeB, blobsB)
	wantStats(t, ix, 2, 6)
	wantLocation(t, ix, idA, blobsA[2]) // the first location wins
	wantLocation(t, ix, idB, blobsB[2]) // so does the first copy in a pack

	var nums []uint32
	if err := ix.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketPackNums).ForEach(func(k, v []byte) error {
			nums = append(nums, binary.BigEndian.Uint32(k))
			return nil
		})
	}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(nums, []uint32{0, 1}) {
		t.Fatalf("pack numbers %v, want [0 1]", nums)
	}
}

func TestAddPackRefusesBadInput(t *testing.T) {
	r := rand.New(rand.NewSource(3))
	ix, _ := tempIndex(t)
	id, size, blobs := makePack(r, 2)
	if err := ix.AddPack(id, size, nil); err == nil {
		t.Error("empty pack accepted")
	}
	if err := ix.AddPack(id, 10, blobs); err == nil {
		t.Error("impossible size accepted")
	}
	blobs[1].Type = 9
	if err := ix.AddPack(id, size, blobs); err == nil {
		t.Error("unknown blob type accepted")
	}
	if err := ix.AddPacks([]PackInfo{{id, size, 3}}, [][]pack.Blob{blobs[:1]}); err == nil {
		t.Error("count mismatch accepted")
	}
	if err := ix.AddPacks([]PackInfo{{id, size, 1}}, nil); err == nil {
		t.Error("missing blob list accepted")
	}
	wantStats(t, ix, 0, 0)
}

func TestAddPacks(t *testing.T) {
	r := rand.New(rand.NewSource(4))
	ix, _ := tempIndex(t)
	var infos []PackInfo
	var lists [][]pack.Blob
	for i := 0; i < 20; i++ {
		id, size, blobs := makePack(r, 50)
		infos = append(infos, PackInfo{id, size, len(blobs)})
		lists = append(lists, blobs)
	}
	infos = append(infos, infos[3]) // a repeated pack is a no-op
	lists = append(lists, lists[3])
	if err := ix.AddPacks(infos, lists); err != nil {
		t.Fatal(err)
	}
	wantStats(t, ix, 20, 1000)
	wantLocation(t, ix, infos[7].ID, lists[7][49])
}

func TestHeldSeesOwnWrites(t *testing.T) {
	r := rand.New(rand.NewSource(5))
	ix, _ := tempIndex(t)
	if err := ix.Hold(); err != nil {
		t.Fatal(err)
	}
	if err := ix.Hold(); err != nil { // idempotent
		t.Fatal(err)
	}
	var added [][]pack.Blob
	var ids []chunk.ID
	for i := 0; i < 10; i++ {
		id, size, blobs := makePack(r, 20)
		wantMissing(t, ix, blobs[0].ID)
		mustAdd(t, ix, id, size, blobs)
		added, ids = append(added, blobs), append(ids, id)
		for j := range added {
			wantLocation(t, ix, ids[j], added[j][i%20])
		}
		if ix.held == nil {
			t.Fatal("held handle not reopened after a commit")
		}
	}
	if err := ix.Release(); err != nil {
		t.Fatal(err)
	}
	wantLocation(t, ix, ids[4], added[4][3])
	wantStats(t, ix, 10, 200)
}

// Two Index values on one file use separate open file descriptions, so
// their flocks conflict exactly as those of two processes do: a backup
// holding the index and committing, and a restore looking blobs up.
func TestWriterAndReaderProcesses(t *testing.T) {
	r := rand.New(rand.NewSource(6))
	path := filepath.Join(t.TempDir(), "index.db")
	writer := openTest(t, path)
	reader := openTest(t, path)
	// A deadlock fails the test as ErrLocked instead of hanging it.
	writer.timeout, reader.timeout = 20*time.Second, 20*time.Second
	if err := writer.Hold(); err != nil {
		t.Fatal(err)
	}

	const packs = 30
	type added struct {
		id   chunk.ID
		blob pack.Blob
	}
	published := make(chan added, packs)
	done := make(chan struct{})
	var commits []time.Duration
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { // the backup
		defer wg.Done()
		defer close(done)
		for i := 0; i < packs; i++ {
			id, size, blobs := makePack(r, 100)
			start := time.Now()
			if err := writer.AddPack(id, size, blobs); err != nil {
				t.Error(err)
				return
			}
			commits = append(commits, time.Since(start))
			for _, b := range blobs[:10] {
				if _, found, err := writer.Lookup(b.ID); err != nil || !found {
					t.Errorf("writer lookup after commit: found %v, %v", found, err)
					return
				}
			}
			published <- added{id, blobs[0]}
		}
	}()
	lookups := 0
	states := 0 // distinct numbers of committed packs the reader saw
	go func() { // the restore
		defer wg.Done()
		var known []added
		lastKnown := 0
		for {
			select {
			case a := <-published:
				known = append(known, a)
			case <-done:
				return
			default:
			}
			ids := []chunk.ID{{1}}
			for _, a := range known {
				ids = append(ids, a.blob.ID)
			}
			err := reader.LookupMany(ids, func(i int, loc Location, found bool) error {
				if found != (i > 0) || (i > 0 && loc.Pack != known[i-1].id) {
					return fmt.Errorf("reader: index %d found %v at %s", i, found, loc.Pack.Short())
				}
				return nil
			})
			if err != nil {
				t.Error(err)
				return
			}
			if lookups == 0 || len(known) != lastKnown {
				states++
				lastKnown = len(known)
			}
			lookups++
		}
	}()
	wg.Wait()
	slices.Sort(commits)
	if len(commits) > 0 {
		t.Logf("%d commits (median %v, max %v) while the reader did %d lookups in %d states of the index", len(commits), commits[len(commits)/2], commits[len(commits)-1], lookups, states)
	}
	// The reader must have worked between commits, not just before or after.
	if len(commits) != packs || states < 3 {
		t.Fatalf("no concurrent progress: %d commits, reader saw %d states", len(commits), states)
	}
}

// A process holding the index blocks commits by others; the blocked call
// fails after the timeout with ErrLocked instead of hanging.
func TestLockedTimesOut(t *testing.T) {
	r := rand.New(rand.NewSource(7))
	path := filepath.Join(t.TempDir(), "index.db")
	holder := openTest(t, path)
	other := openTest(t, path)
	other.timeout = 200 * time.Millisecond
	if err := holder.Hold(); err != nil {
		t.Fatal(err)
	}
	id, size, blobs := makePack(r, 3)
	err := other.AddPack(id, size, blobs)
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("AddPack while another process holds the index: %v", err)
	}
	t.Log(err)
	// Readers are not blocked by a holder.
	wantMissing(t, other, blobs[0].ID)
	if err := holder.Release(); err != nil {
		t.Fatal(err)
	}
	mustAdd(t, other, id, size, blobs)
}

func TestRemovePacks(t *testing.T) {
	r := rand.New(rand.NewSource(8))
	ix, _ := tempIndex(t)
	var ids []chunk.ID
	var lists [][]pack.Blob
	for i := 0; i < 4; i++ {
		id, size, blobs := makePack(r, 30)
		mustAdd(t, ix, id, size, blobs)
		ids, lists = append(ids, id), append(lists, blobs)
	}
	if err := ix.RemovePacks([]chunk.ID{ids[1], randID(r), ids[3]}); err != nil {
		t.Fatal(err)
	}
	wantStats(t, ix, 2, 60)
	for _, i := range []int{1, 3} {
		if ok, err := ix.HasPack(ids[i]); ok || err != nil {
			t.Fatalf("HasPack(removed) = %v, %v", ok, err)
		}
		for _, b := range lists[i] {
			wantMissing(t, ix, b.ID)
		}
	}
	for _, i := range []int{0, 2} {
		for _, b := range lists[i] {
			wantLocation(t, ix, ids[i], b)
		}
	}
	if err := ix.RemovePacks(ids[1:2]); err != nil { // again: nothing to do
		t.Fatal(err)
	}
	wantStats(t, ix, 2, 60)

	// A repack: blobs of pack 0 move to a new pack, pack 0 goes.
	newID, newSize, moved := makePack(r, 2)
	moved[0].ID, moved[1].ID = lists[0][5].ID, lists[0][9].ID
	if err := ix.ReplacePacks(ids[:1], []PackInfo{{newID, newSize, 2}}, [][]pack.Blob{moved}); err != nil {
		t.Fatal(err)
	}
	wantStats(t, ix, 2, 32)
	wantLocation(t, ix, newID, moved[0])
	wantLocation(t, ix, newID, moved[1])
	wantMissing(t, ix, lists[0][0].ID)
}

func TestReopen(t *testing.T) {
	r := rand.New(rand.NewSource(9))
	path := filepath.Join(t.TempDir(), "index.db")
	ix, err := Open(path, testRepo)
	if err != nil {
		t.Fatal(err)
	}
	id, size, blobs := makePack(r, 8)
	mustAdd(t, ix, id, size, blobs)
	if err := ix.Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ix.Lookup(blobs[0].ID); !errors.Is(err, ErrClosed) {
		t.Fatalf("Lookup after Close: %v", err)
	}
	if err := ix.AddPack(id, size, blobs); !errors.Is(err, ErrClosed) {
		t.Fatalf("AddPack after Close: %v", err)
	}
	ix = openTest(t, path)
	wantLocation(t, ix, id, blobs[7])
	id2, size2, blobs2 := makePack(r, 2)
	mustAdd(t, ix, id2, size2, blobs2)
	wantStats(t, ix, 2, 10)
}

func TestWrongRepository(t *testing.T) {
	_, path := tempIndex(t)
	_, err := Open(path, "another")
	if !errors.Is(err, ErrOtherRepository) {
		t.Fatalf("got %v, want ErrOtherRepository", err)
	}
	t.Log(err)
	if _, err := Open(path, ""); err == nil {
		t.Fatal("empty repository ID accepted")
	}
}

func TestWrongVersion(t *testing.T) {
	ix, path := tempIndex(t)
	if err := ix.update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(keyVersion, binary.LittleEndian.AppendUint32(nil, 2))
	}); err != nil {
		t.Fatal(err)
	}
	_, err := Open(path, testRepo)
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("got %v, want ErrCorrupt", err)
	}
	t.Log(err)
}

// A bbolt file of someone else's, with buckets but no meta, is not adopted.
func TestForeignDatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "index.db")
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("x")); return err }); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, err := Open(path, testRepo); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("got %v, want ErrCorrupt", err)
	}
}

func TestDamagedValues(t *testing.T) {
	r := rand.New(rand.NewSource(10))
	ix, _ := tempIndex(t)
	id, size, blobs := makePack(r, 3)
	mustAdd(t, ix, id, size, blobs)
	if err := ix.update(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bucketBlobs).Put(blobs[0].ID[:], []byte("short")); err != nil {
			return err
		}
		// Point a blob at a pack number nobody has.
		v := encodeBlob(blobs[1], 77)
		return tx.Bucket(bucketBlobs).Put(blobs[1].ID[:], v)
	}); err != nil {
		t.Fatal(err)
	}
	for _, b := range blobs[:2] {
		if _, _, err := ix.Lookup(b.ID); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("Lookup of damaged entry: %v", err)
		}
	}
	wantLocation(t, ix, id, blobs[2])
	if err := ix.Blobs(func(Location) error { return nil }); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Blobs over damaged entries: %v", err)
	}
}

func TestGarbageFile(t *testing.T) {
	r := rand.New(rand.NewSource(11))
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"random", func() []byte { b := make([]byte, 100<<10); r.Read(b); return b }()},
		{"zeros", make([]byte, 64<<10)},
		{"tiny", []byte("not a database")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "index.db")
			if err := os.WriteFile(path, tc.data, 0o600); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			_, err := Open(path, testRepo)
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("got %v, want ErrCorrupt", err)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Fatalf("took %v", d)
			}
			t.Log(err)
		})
	}
}

// A truncated index keeps valid meta pages but refers to pages beyond the
// end of the file. bbolt reads them through its memory map, which faults
// (SIGBUS) past the end of the file or finds zeros in unused space; either
// must come back as ErrCorrupt, not kill the process.
func TestTruncatedFile(t *testing.T) {
	r := rand.New(rand.NewSource(12))
	ix, path := tempIndex(t)
	var all []pack.Blob
	for i := 0; i < 20; i++ {
		id, size, blobs := makePack(r, 500)
		mustAdd(t, ix, id, size, blobs)
		all = append(all, blobs...)
	}
	if err := ix.Close(); err != nil {
		t.Fatal(err)
	}
	whole, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// The root of the blobs bucket is page 529 of 4 KiB. Cut to 520 pages
	// the file is mapped as 4 MiB, and reading page 529 raises SIGBUS,
	// which kills the process unless guard sets SetPanicOnFault.
	for _, size := range []int{len(whole) / 8, 6 << 12, 520 << 12} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			if err := os.WriteFile(path, whole[:size], 0o600); err != nil {
				t.Fatal(err)
			}
			ix, err = Open(path, testRepo)
			if err != nil {
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("Open: %v", err)
				}
				t.Log(err)
				return
			}
			defer ix.Close()
			failed := 0
			for _, b := range all {
				if _, _, err := ix.Lookup(b.ID); err != nil {
					if !errors.Is(err, ErrCorrupt) {
						t.Fatalf("Lookup: %v", err)
					}
					if failed == 0 {
						t.Log(err)
					}
					failed++
				}
			}
			if failed == 0 {
				t.Fatal("every lookup in a truncated index succeeded")
			}
		})
	}
}

func TestCallbackPanicIsNotCorruption(t *testing.T) {
	r := rand.New(rand.NewSource(13))
	ix, _ := tempIndex(t)
	id, size, blobs := makePack(r, 3)
	mustAdd(t, ix, id, size, blobs)
	defer func() {
		if v := recover(); v != "boom" {
			t.Fatalf("recovered %v, want the callback's panic", v)
		}
		// The index is still usable.
		wantLocation(t, ix, id, blobs[0])
	}()
	ix.Packs(func(PackInfo) error { panic("boom") })
}

// TestCrossProcess runs the reader in a child process (this test binary
// again), so that the locking is exercised between real processes.
func TestCrossProcess(t *testing.T) {
	r := rand.New(rand.NewSource(15))
	path := filepath.Join(t.TempDir(), "index.db")
	writer := openTest(t, path)
	writer.timeout = 20 * time.Second
	if err := writer.Hold(); err != nil {
		t.Fatal(err)
	}
	const packs = 20
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrossProcessReader$", "-test.v")
	cmd.Env = append(os.Environ(), "SNAP_INDEX_READER="+path, fmt.Sprint("SNAP_INDEX_PACKS=", packs))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < packs; i++ {
		id, size, blobs := makePack(r, 100)
		mustAdd(t, writer, id, size, blobs)
		time.Sleep(5 * time.Millisecond) // the backup writes the next pack
	}
	err := cmd.Wait()
	t.Logf("reader process:\n%s", out.Bytes())
	if err != nil {
		t.Fatal(err)
	}
}

func TestCrossProcessReader(t *testing.T) {
	path := os.Getenv("SNAP_INDEX_READER")
	if path == "" {
		t.Skip("run by TestCrossProcess")
	}
	var want int
	fmt.Sscan(os.Getenv("SNAP_INDEX_PACKS"), &want)
	ix := openTest(t, path)
	ix.timeout = 20 * time.Second
	seen := map[int]bool{}
	calls := 0
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); calls++ {
		packs, _, err := ix.Stats()
		if err != nil {
			t.Fatal(err)
		}
		seen[packs] = true
		if packs == want {
			break
		}
	}
	t.Logf("%d calls saw %d states of the index", calls, len(seen))
	if !seen[want] || len(seen) < 3 {
		t.Fatalf("reader saw %d of %d states, final one: %v", len(seen), want+1, seen[want])
	}
}

// TestCopyTakesOverWhenPackRemoved: a blob stored in two packs stays indexed
// when the pack of its indexed copy is removed, as happens when another
// machine's prune deletes a pack whose blobs it had also repacked.
func TestCopyTakesOverWhenPackRemoved(t *testing.T) {
	r := rand.New(rand.NewSource(9))
	ix := openTest(t, filepath.Join(t.TempDir(), "index.db"))
	idA, sizeA, blobsA := makePack(r, 3)
	idB, sizeB, blobsB := makePack(r, 2)
	shared := blobsA[1]
	blobsB[1].ID, blobsB[1].Type = shared.ID, shared.Type // same blob, other place
	if err := ix.AddPack(idA, sizeA, blobsA); err != nil {
		t.Fatal(err)
	}
	if err := ix.AddPack(idB, sizeB, blobsB); err != nil {
		t.Fatal(err)
	}
	if loc, ok, _ := ix.Lookup(shared.ID); !ok || loc.Pack != idA {
		t.Fatalf("the first copy should be indexed: %v %v", loc.Pack.Short(), ok)
	}
	if err := ix.RemovePacks([]chunk.ID{idA}); err != nil {
		t.Fatal(err)
	}
	loc, ok, err := ix.Lookup(shared.ID)
	if err != nil || !ok || loc.Pack != idB || loc.Offset != blobsB[1].Offset {
		t.Fatalf("after removing pack A the copy in B should be indexed: %+v %v %v", loc, ok, err)
	}
	if _, ok, _ := ix.Lookup(blobsA[0].ID); ok {
		t.Error("a blob only in the removed pack is still indexed")
	}
	// Removing B too leaves nothing, and no stale copy comes back.
	if err := ix.RemovePacks([]chunk.ID{idB}); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := ix.Lookup(shared.ID); ok {
		t.Error("a blob whose packs are all removed is still indexed")
	}
}

// TestHasMany checks the presence-only lookups against LookupMany.
func TestHasMany(t *testing.T) {
	r := rand.New(rand.NewSource(31))
	ix, _ := tempIndex(t)
	id, size, blobs := makePack(r, 40)
	mustAdd(t, ix, id, size, blobs)
	var ids []chunk.ID
	want := map[int]bool{}
	for i, b := range blobs {
		if i%3 == 0 {
			want[len(ids)] = false
			ids = append(ids, randID(r))
		}
		want[len(ids)] = true
		ids = append(ids, b.ID)
	}
	got := map[int]bool{}
	if err := ix.HasMany(ids, func(i int, found bool) { got[i] = found }); err != nil {
		t.Fatal(err)
	}
	for i, id := range ids {
		has, err := ix.Has(id)
		if err != nil {
			t.Fatal(err)
		}
		if got[i] != want[i] || has != want[i] {
			t.Fatalf("blob %d (%s): HasMany %v, Has %v; want %v", i, id.Short(), got[i], has, want[i])
		}
	}
	if len(got) != len(ids) {
		t.Fatalf("HasMany called back %d times for %d IDs", len(got), len(ids))
	}
}
