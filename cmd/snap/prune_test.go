package main

// Tests of prune, check, repair, forget --prune and stats: prune killed with
// -9 at random moments, the space a prune gives back, a damaged pack found
// by check and salvaged by repair, check's read-data subsets, prune refusing
// to run on unreadable trees, prune and the write lock, the list of files a
// forget --prune would make unrecoverable, and the numbers of stats. They run
// the snap binary as separate processes on real files.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"snap/chunk"
	"snap/internal/backend"
	"snap/internal/backend/local"
	"snap/internal/testtree"
)

// --- helpers ----------------------------------------------------------------

// pruneCopyDir copies a directory tree with cp -a (modes, times, symlinks
// kept), to get identical copies of a repository or of a source state.
func pruneCopyDir(t testing.TB, from, to string) {
	t.Helper()
	if out, err := exec.Command("cp", "-a", from, to).CombinedOutput(); err != nil {
		t.Fatalf("cp -a %s %s: %v\n%s", from, to, err, out)
	}
}

var pruneWords = strings.Fields("the backup of a home directory holds mail photos source code and notes; " +
	"prune gives back the space of snapshots that were forgotten while every kept one stays whole")

// pruneText returns n bytes of compressible text.
func pruneText(rng *rand.Rand, n int) []byte {
	b := make([]byte, 0, n+16)
	for len(b) < n {
		b = append(b, pruneWords[rng.IntN(len(pruneWords))]...)
		if rng.IntN(10) == 0 {
			b = append(b, '\n')
		} else {
			b = append(b, ' ')
		}
	}
	return b[:n]
}

// pruneRandom returns n incompressible bytes.
func pruneRandom(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		if i%8 == 0 {
			v := rng.Uint64()
			for k := 0; k < 8 && i+k < n; k++ {
				b[i+k] = byte(v >> (8 * k))
			}
		}
	}
	return b
}

// pruneWrite writes data to p, creating the directories above it.
func pruneWrite(t testing.TB, p string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// pruneMutate changes a tree written by testtree the way a week of work
// would: about 12% of the small files are deleted and 10% rewritten, 40 new
// files appear in new<step>/, 1 MiB in the middle of large0.img is
// overwritten in place (so only the chunks around it change), and at step 2
// large1.img is replaced as a whole.
func pruneMutate(t testing.TB, dir string, rng *rand.Rand, step int) {
	t.Helper()
	var small []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() && !strings.HasPrefix(d.Name(), "large") {
			small = append(small, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range small {
		switch x := rng.IntN(100); {
		case x < 12:
			if err := os.Remove(p); err != nil {
				t.Fatal(err)
			}
		case x < 22:
			n := 100 + rng.IntN(96<<10)
			if strings.HasSuffix(p, ".bin") {
				pruneWrite(t, p, pruneRandom(rng, n))
			} else {
				pruneWrite(t, p, pruneText(rng, n))
			}
		}
	}
	for i := range 40 {
		n := rng.IntN(256 << 10)
		if i%2 == 0 {
			pruneWrite(t, filepath.Join(dir, fmt.Sprintf("new%d", step), fmt.Sprintf("n%02d.bin", i)), pruneRandom(rng, n))
		} else {
			pruneWrite(t, filepath.Join(dir, fmt.Sprintf("new%d", step), "sub", fmt.Sprintf("n%02d.txt", i)), pruneText(rng, n))
		}
	}
	f, err := os.OpenFile(filepath.Join(dir, "large0.img"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := f.Stat()
	if _, err := f.WriteAt(pruneRandom(rng, 1<<20), rng.Int64N(fi.Size()-1<<20)); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if step == 2 {
		p := filepath.Join(dir, "large1.img")
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := testtree.RandomFile(p, rng.Uint64(), int(fi.Size())); err != nil {
			t.Fatal(err)
		}
	}
}

// pruneBlobCopies counts, for every blob ID, the copies in the packs of a
// repository, and sums the stored bytes of the distinct blobs.
func pruneBlobCopies(packs map[string]packOnDisk) (copies map[chunk.ID]int, stored int64) {
	copies = map[chunk.ID]int{}
	for _, p := range packs {
		for _, e := range p.Entries {
			if copies[e.ID] == 0 {
				stored += int64(e.Length)
			}
			copies[e.ID]++
		}
	}
	return copies, stored
}

// prunePackNames returns pack file names with their sizes.
func prunePackNames(packs map[string]packOnDisk) map[string]int64 {
	out := map[string]int64{}
	for name, p := range packs {
		out[name] = p.Size
	}
	return out
}

// pruneSamePacks fails the test unless data/ holds exactly the packs of want.
func pruneSamePacks(t testing.TB, what string, want, got map[string]packOnDisk) {
	t.Helper()
	w, g := prunePackNames(want), prunePackNames(got)
	for name, size := range w {
		if gs, ok := g[name]; !ok {
			t.Errorf("%s: pack %s (%d bytes) was deleted", what, name[:8], size)
		} else if gs != size {
			t.Errorf("%s: pack %s is %d bytes, was %d", what, name[:8], gs, size)
		}
	}
	for name := range g {
		if _, ok := w[name]; !ok {
			t.Errorf("%s: pack %s appeared", what, name[:8])
		}
	}
}

// pruneSnapshotIDs returns the full IDs 'snap snapshots' lists, sorted.
func pruneSnapshotIDs(t testing.TB, repo string) []string {
	t.Helper()
	var ids []string
	for _, s := range listSnapshotsJSON(t, repo) {
		ids = append(ids, s.ID)
	}
	slices.Sort(ids)
	return ids
}

// pruneStats is the part of 'snap stats --json' the tests read.
type pruneStats struct {
	Stats struct {
		Snapshots     int     `json:"snapshots"`
		RestoreSize   int64   `json:"restore_size"`
		Files         int64   `json:"files"`
		UniqueBlobs   int64   `json:"unique_blobs"`
		UniqueRaw     int64   `json:"unique_raw"`
		UniqueStored  int64   `json:"unique_stored"`
		DedupRatio    float64 `json:"dedup_ratio"`
		CompressRatio float64 `json:"compress_ratio"`
		Per           []struct {
			ID          string `json:"id"`
			RestoreSize int64  `json:"restore_size"`
			Files       int64  `json:"files"`
			AddedBlobs  int64  `json:"added_blobs"`
			AddedStored int64  `json:"added_stored"`
		} `json:"per_snapshot"`
	} `json:"stats"`
	Packs int `json:"repository_packs"`
	Blobs int `json:"repository_blobs"`
}

func pruneStatsJSON(t testing.TB, repo string, snaps ...string) pruneStats {
	t.Helper()
	r := mustSnap(t, append([]string{"stats", "--json", "-r", repo}, snaps...)...)
	var st pruneStats
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		t.Fatalf("stats --json: %v\n%s", err, r.stdout)
	}
	return st
}

// pruneFlip inverts n bytes at off of a pack file (0400 in data/).
func pruneFlip(t testing.TB, path string, off int64, n int) {
	t.Helper()
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, n)
	if _, err := f.ReadAt(buf, off); err != nil {
		t.Fatal(err)
	}
	for i := range buf {
		buf[i] ^= 0xff
	}
	if _, err := f.WriteAt(buf, off); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o400); err != nil {
		t.Fatal(err)
	}
}

// pruneSnapshotTree returns the root tree ID of a snapshot.
func pruneSnapshotTree(t testing.TB, repo, id string) string {
	t.Helper()
	var sn struct {
		Tree string `json:"tree"`
	}
	out := mustSnap(t, "cat", "-r", repo, "snapshot", id).stdout
	if err := json.Unmarshal([]byte(out), &sn); err != nil {
		t.Fatalf("cat snapshot %s: %v\n%s", id, err, out)
	}
	return sn.Tree
}

// pruneTreeFiles walks a snapshot tree with 'snap cat tree' and returns the
// path of every file (from the snapshot's root, "/src/a/b") for each of its
// data blobs, and the tree ID of every directory by path.
func pruneTreeFiles(t testing.TB, repo, tree string) (blobOwner map[string]string, dirs map[string]string) {
	t.Helper()
	blobOwner, dirs = map[string]string{}, map[string]string{"/": tree}
	var walk func(id, dir string)
	walk = func(id, dir string) {
		for _, n := range catTreeNodes(t, repo, id) {
			p := dir + "/" + n.Name
			for _, b := range n.Content {
				blobOwner[b] = p
			}
			if n.Subtree != "" {
				dirs[p] = n.Subtree
				walk(n.Subtree, p)
			}
		}
	}
	walk(tree, "")
	return blobOwner, dirs
}

// pruneFindBlob returns the pack holding blob id (hex) and its entry.
func pruneFindBlob(t testing.TB, packs map[string]packOnDisk, id string) (packOnDisk, trailerEntry) {
	t.Helper()
	for _, p := range packs {
		for _, e := range p.Entries {
			if e.ID.String() == id {
				return p, e
			}
		}
	}
	t.Fatalf("no pack holds blob %s", id[:8])
	return packOnDisk{}, trailerEntry{}
}

// pruneFileSizes sums the sizes of the regular files under dir and counts them.
func pruneFileSizes(t testing.TB, dir string) (size, files int64) {
	t.Helper()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		size += fi.Size()
		files++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return size, files
}

// --- 1. prune killed with -9 ------------------------------------------------

// TestPruneKill9 builds a repository of five snapshots of a ~150 MB tree
// that changes between them (files deleted, rewritten, added; chunks of a
// large file overwritten; a large file replaced), forgets all but the last
// two, and then starts 'snap prune --max-unused 0%' 20 times, killing it
// with SIGKILL after a random delay within the duration of an uninterrupted
// prune (measured on an identical copy made with cp -a). Every fourth
// prune, and every prune after one that finished before its kill, starts
// from a fresh copy of the forgotten-but-not-pruned repository; the others
// run on what the killed ones left (a prune that completes there is the
// case TestPruneAfterKilledRepack pins down). After every kill,
// 'snap check --read-data' must exit 0, exactly the two kept snapshots must
// be listed, and both must restore byte-identical (content, modes, mtimes,
// symlinks) to the tree as it was backed up. Finally an uninterrupted prune completes, check passes without
// even a note, tmp/ is empty, and the packs hold exactly the blobs of the
// clean prune, each once. The seed is logged; SNAP_PRUNE_SEED reruns one.
func TestPruneKill9(t *testing.T) {
	const kills, chain = 20, 4
	seed := testSeed(t, "SNAP_PRUNE_SEED")
	rng := rand.New(rand.NewPCG(seed, 0x7072756e65))
	defer debug.SetGCPercent(debug.SetGCPercent(400))

	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	size := writeTestTree(t, src, testtree.Spec{Seed: 71, Files: 1000, Large: []int{40 << 20, 24<<20 + 777}})
	t.Logf("tree of %d bytes", size)
	repo := filepath.Join(dir, "repo")
	mustSnap(t, "init", "-q", "-r", repo)
	// The history of the tree is fixed; only the kill points are random.
	treeRng := rand.New(rand.NewPCG(72, 72))
	var ids []string
	state4 := filepath.Join(dir, "state4")
	for step := range 5 {
		if step > 0 {
			pruneMutate(t, src, treeRng, step)
		}
		ids = append(ids, create(t, repo, src).SnapshotID)
		if step == 3 {
			pruneCopyDir(t, src, state4)
		}
	}
	mustSnap(t, "forget", "-q", "-r", repo, "--keep-last", "2")
	kept := map[string]string{ids[3]: state4, ids[4]: src}
	wantIDs := []string{ids[3], ids[4]}
	slices.Sort(wantIDs)
	if got := pruneSnapshotIDs(t, repo); !slices.Equal(got, wantIDs) {
		t.Fatalf("after forget --keep-last 2: snapshots %v, want %v", got, wantIDs)
	}
	pristine := packsOnDisk(t, repo)

	// One uninterrupted prune on an identical copy: its duration bounds the
	// kill delays, its result is what every interrupted series must reach.
	clean := filepath.Join(dir, "clean")
	pruneCopyDir(t, repo, clean)
	start := time.Now()
	out := mustSnap(t, "prune", "--json", "--max-unused", "0%", "-r", clean).stdout
	typical := time.Since(start)
	var plan struct {
		Delete int   `json:"delete_packs"`
		Repack int   `json:"repack_packs"`
		Copied int64 `json:"repack_copied_bytes"`
		Freed  int64 `json:"freed_bytes"`
	}
	if err := json.Unmarshal([]byte(out), &plan); err != nil {
		t.Fatalf("prune --json: %v\n%s", err, out)
	}
	cleanPacks := packsOnDisk(t, clean)
	cleanCopies, cleanStored := pruneBlobCopies(cleanPacks)
	t.Logf("clean prune took %v: %d packs (%d bytes) before, deleted %d packs, repacked %d copying %d bytes; %d packs (%d bytes) after",
		typical.Round(time.Millisecond), len(pristine), packsSize(pristine), plan.Delete, plan.Repack, plan.Copied, len(cleanPacks), packsSize(cleanPacks))
	if plan.Repack < 3 || plan.Copied < 10<<20 {
		t.Fatalf("the clean prune repacked %d packs (%d bytes): not enough work to interrupt", plan.Repack, plan.Copied)
	}

	work := filepath.Join(dir, "work")
	killed, finished := 0, 0
	wasKilled := false
	for i := range kills {
		if i%chain == 0 || !wasKilled {
			if err := os.RemoveAll(work); err != nil {
				t.Fatal(err)
			}
			pruneCopyDir(t, repo, work)
		}
		delay := time.Duration(rng.Float64() * float64(typical))
		p := startBgSnap(t, "prune", "-q", "--max-unused", "0%", "-r", work)
		select {
		case <-p.done:
		case <-time.After(delay):
			p.kill()
		}
		var r result
		r, wasKilled = p.wait()
		if !wasKilled && r.code != 0 {
			t.Fatalf("kill %d: prune (to be killed after %v) failed on its own: exit %d\nstdout: %s\nstderr: %s", i, delay, r.code, r.stdout, r.stderr)
		}
		if wasKilled {
			killed++
		} else {
			finished++
		}
		// What the kill left: packs on disk that the index does not list
		// (new packs of an unfinished repack, or old packs not yet deleted),
		// and how many of the packs from before any prune are gone.
		onDisk := packsOnDisk(t, work)
		idx := readIndexContent(t, work)
		unindexed, oldGone := 0, 0
		for name := range onDisk {
			id, _ := chunk.ParseID(name)
			if _, ok := idx.Packs[id]; !ok {
				unindexed++
			}
		}
		for name := range pristine {
			if _, ok := onDisk[name]; !ok {
				oldGone++
			}
		}
		t.Logf("kill %d: after %v, killed=%v: %d packs on disk (%d bytes), %d not indexed, %d of the %d original packs deleted",
			i, delay.Round(time.Millisecond), wasKilled, len(onDisk), packsSize(onDisk), unindexed, oldGone, len(pristine))

		c := snap(t, "check", "--read-data", "-r", work)
		if c.code != 0 {
			t.Fatalf("kill %d (seed %d): check --read-data after a prune to be killed after %v (killed: %v): exit %d\nstdout: %s\nstderr: %s",
				i, seed, delay, wasKilled, c.code, c.stdout, c.stderr)
		}
		if got := pruneSnapshotIDs(t, work); !slices.Equal(got, wantIDs) {
			t.Fatalf("kill %d: snapshots %v, want %v", i, got, wantIDs)
		}
		for id, want := range kept {
			o := restoreScratchDir(t)
			if r := snap(t, "restore", "-q", "-r", work, id, "--target", o); r.code != 0 {
				t.Fatalf("kill %d (seed %d): restore %s: exit %d\nstderr: %s", i, seed, id[:8], r.code, r.stderr)
			}
			compareTrees(t, want, filepath.Join(o, "src"))
			os.RemoveAll(o)
		}
		if t.Failed() {
			t.Fatalf("kill %d (seed %d): a kept snapshot does not restore as it was backed up", i, seed)
		}
	}
	t.Logf("%d of %d prunes were killed, %d finished before their kill", killed, kills, finished)
	if killed < kills/3 {
		t.Fatalf("only %d of %d prunes were killed before they finished; the test did not test much (seed %d)", killed, kills, seed)
	}

	// An uninterrupted prune finishes the job.
	mustSnap(t, "prune", "-q", "--max-unused", "0%", "-r", work)
	c := mustSnap(t, "check", "--read-data", "-r", work)
	if strings.Contains(c.stdout, "note:") || strings.Contains(c.stdout, "error:") {
		t.Errorf("check after the final prune reports:\n%s", c.stdout)
	}
	if left, _ := os.ReadDir(filepath.Join(work, "tmp")); len(left) > 0 {
		t.Errorf("%d files left in tmp/ after the final prune", len(left))
	}
	final := packsOnDisk(t, work)
	copies, stored := pruneBlobCopies(final)
	for id, n := range copies {
		if n > 1 {
			t.Errorf("blob %s is stored %d times after the final prune", id.Short(), n)
		}
		if cleanCopies[id] == 0 {
			t.Errorf("blob %s is kept by the final prune but not by a clean one", id.Short())
		}
	}
	for id := range cleanCopies {
		if copies[id] == 0 {
			t.Errorf("blob %s is kept by a clean prune but missing after the final prune", id.Short())
		}
	}
	t.Logf("after the final prune: %d packs, %d bytes, %d stored blob bytes; the clean prune: %d packs, %d bytes, %d stored blob bytes",
		len(final), packsSize(final), stored, len(cleanPacks), packsSize(cleanPacks), cleanStored)
	if stored != cleanStored {
		t.Errorf("the packs hold %d stored bytes of blobs after the final prune, %d after a clean prune", stored, cleanStored)
	}
	for id, want := range kept {
		o := restoreScratchDir(t)
		mustSnap(t, "restore", "-q", "-r", work, id, "--target", o)
		compareTrees(t, want, filepath.Join(o, "src"))
		os.RemoveAll(o)
	}
}

// prunePackCount counts the files in data/ without reading them.
func prunePackCount(repo string) int {
	n := 0
	filepath.WalkDir(filepath.Join(repo, "data"), func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			n++
		}
		return nil
	})
	return n
}

// TestPruneAfterKilledRepack is the deterministic case of TestPruneKill9
// that found a data loss: a prune is killed right after the first pack of
// its repack appears in data/ (so before it commits), and then a complete
// prune runs. The complete prune repacks the same blobs in the same order,
// so its first new pack has the same bytes, hence the same name, as the
// pack the killed run left, which the complete prune also plans to delete
// (it holds no blob the index locates there). After it, check --read-data
// must pass and the kept snapshot must restore.
func TestPruneAfterKilledRepack(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	if err := os.Mkdir(src, 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range 8 {
		if err := testtree.RandomFile(filepath.Join(src, fmt.Sprintf("f%d.bin", i)), uint64(140+i), 12<<20); err != nil {
			t.Fatal(err)
		}
	}
	repo := filepath.Join(dir, "repo")
	mustSnap(t, "init", "-q", "-r", repo)
	create(t, repo, src)
	for _, i := range []int{1, 4, 6} {
		if err := os.Remove(filepath.Join(src, fmt.Sprintf("f%d.bin", i))); err != nil {
			t.Fatal(err)
		}
	}
	kept := create(t, repo, src).SnapshotID
	mustSnap(t, "forget", "-q", "-r", repo, "--keep-last", "1")
	n0 := prunePackCount(repo)

	var work string
	for attempt := 0; ; attempt++ {
		if attempt == 5 {
			t.Fatalf("in 5 attempts no prune could be killed between writing its first new pack and finishing")
		}
		work = filepath.Join(dir, fmt.Sprintf("work%d", attempt))
		pruneCopyDir(t, repo, work)
		p := startBgSnap(t, "prune", "-q", "--max-unused", "0%", "-r", work)
		for !p.exited() && prunePackCount(work) <= n0 {
		}
		p.kill()
		if _, killed := p.wait(); killed && prunePackCount(work) > n0 {
			break
		}
	}
	left := packsOnDisk(t, work)
	idx := readIndexContent(t, work)
	for name := range left {
		if id, _ := chunk.ParseID(name); idx.Packs[id].Size == 0 {
			t.Logf("the killed prune left pack %s (not indexed)", name[:8])
		}
	}
	if r := snap(t, "check", "--read-data", "-r", work); r.code != 0 {
		t.Fatalf("check --read-data after the killed prune: exit %d\nstdout: %s", r.code, r.stdout)
	}
	r := mustSnap(t, "prune", "--max-unused", "0%", "-r", work)
	t.Logf("the complete prune:\n%s", r.stdout)
	if c := snap(t, "check", "--read-data", "-r", work); c.code != 0 {
		t.Errorf("check --read-data after a complete prune that followed a killed one: exit %d\nstdout: %s", c.code, c.stdout)
	}
	o := restoreScratchDir(t)
	if r := snap(t, "restore", "-q", "-r", work, kept, "--target", o); r.code != 0 {
		t.Fatalf("restore after a complete prune that followed a killed one: exit %d\nstderr: %s", r.code, r.stderr)
	}
	compareTrees(t, src, filepath.Join(o, "src"))
}

// --- 2. space given back ----------------------------------------------------

// TestPruneFreesRemovedSnapshotsSpace makes five snapshots of one path
// whose data is mostly disjoint (each holds 16 MiB of random files and 40
// text files of its own, plus a shared directory of text), forgets all but
// the middle one and runs 'snap prune' with its default --max-unused 5%.
//
// Definitions: total = pack bytes before the forget; need = what the kept
// snapshot alone needs in pack files, its unique stored bytes plus a 58-byte
// trailer entry per blob (both from 'snap stats --json' of that snapshot);
// others = total - need, the space the removed snapshots held. The prune
// must free at least 95% of others: pack bytes after <= need + 24 bytes of
// footer per pack + 5% of others. It must not free what the kept snapshot
// needs (pack bytes after >= need), and the kept snapshot restores
// byte-identical and check --read-data passes.
func TestPruneFreesRemovedSnapshotsSpace(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	rng := rand.New(rand.NewPCG(81, 81))
	for i := range 20 {
		pruneWrite(t, filepath.Join(src, "shared", fmt.Sprintf("s%02d.txt", i)), pruneText(rng, 50<<10))
	}
	repo := filepath.Join(dir, "repo")
	mustSnap(t, "init", "-q", "-r", repo)
	var ids []string
	keptState := filepath.Join(dir, "kept")
	const keep = 2
	for k := range 5 {
		own := filepath.Join(src, "own")
		if err := os.RemoveAll(own); err != nil {
			t.Fatal(err)
		}
		for i := range 4 {
			pruneWrite(t, filepath.Join(own, fmt.Sprintf("r%d.bin", i)), pruneRandom(rng, 4<<20))
		}
		for i := range 40 {
			pruneWrite(t, filepath.Join(own, "text", fmt.Sprintf("t%02d.txt", i)), pruneText(rng, 1000+rng.IntN(30<<10)))
		}
		ids = append(ids, create(t, repo, src).SnapshotID)
		if k == keep {
			pruneCopyDir(t, src, keptState)
		}
	}
	total := packBytes(t, repo)
	st := pruneStatsJSON(t, repo, ids[keep])
	need := st.Stats.UniqueStored + 58*st.Stats.UniqueBlobs
	others := total - need
	var forget []string
	for k, id := range ids {
		if k != keep {
			forget = append(forget, id)
		}
	}
	mustSnap(t, append([]string{"forget", "-q", "-r", repo}, forget...)...)
	if got := pruneSnapshotIDs(t, repo); !slices.Equal(got, []string{ids[keep]}) {
		t.Fatalf("after forget: snapshots %v, want only %s", got, ids[keep])
	}
	mustSnap(t, "prune", "-r", repo)
	after := packsOnDisk(t, repo)
	left := packsSize(after)
	limit := need + 24*int64(len(after)) + others/20
	t.Logf("packs: %d bytes before; the kept snapshot needs %d, the others held %d; after prune %d bytes in %d packs (freed %.1f%% of what the others held), limit %d",
		total, need, others, left, len(after), 100*float64(total-left)/float64(others), limit)
	if others < 3*need {
		t.Fatalf("the removed snapshots held only %d bytes, the kept one %d: the data is not mostly disjoint", others, need)
	}
	if left > limit {
		t.Errorf("after prune the packs hold %d bytes; the kept snapshot needs %d, so %d of the %d bytes the removed snapshots held stay (%.1f%%, want at most 5%%)",
			left, need, left-need, others, 100*float64(left-need)/float64(others))
	}
	if left < need {
		t.Errorf("after prune the packs hold %d bytes, less than the %d the kept snapshot needs", left, need)
	}
	mustSnap(t, "check", "--read-data", "-r", repo)
	o := restoreScratchDir(t)
	mustSnap(t, "restore", "-q", "-r", repo, ids[keep], "--target", o)
	compareTrees(t, keptState, filepath.Join(o, "src"))
}

// --- 3. a damaged pack: check, repair packs, repair snapshots ---------------

// TestCheckRepairDamagedPack backs up a tree twice (A, then B with one file
// more) and another tree once (C), flips 16 bytes in the middle of a data
// blob in the middle of the largest pack, and then:
//   - check --read-data exits 1; its output names the damaged pack, the
//     damaged file by its path in the snapshots, and the short IDs of A and
//     B (not C) on that file's line;
//   - repair packs <pack> and repair snapshots --forget succeed;
//   - check --read-data exits 0; the snapshots are C and the repaired
//     copies of A and B, which record the lost path;
//   - every file of A and B other than the damaged one restores
//     byte-identical (content, mode, mtime), C restores whole, and the
//     damaged file is restored empty with the xattr user.snap.damaged.
func TestCheckRepairDamagedPack(t *testing.T) {
	dir := t.TempDir()
	src, other := filepath.Join(dir, "src"), filepath.Join(dir, "other")
	for i := range 8 {
		if err := os.MkdirAll(filepath.Join(src, "bin", fmt.Sprint(i%2)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := testtree.RandomFile(filepath.Join(src, "bin", fmt.Sprint(i%2), fmt.Sprintf("random%d.bin", i)), uint64(900+i), 3<<20+i*7919); err != nil {
			t.Fatal(err)
		}
	}
	rng := rand.New(rand.NewPCG(91, 91))
	for i := range 10 {
		pruneWrite(t, filepath.Join(src, "notes", fmt.Sprintf("note%d.txt", i)), pruneText(rng, 2000+i))
	}
	writeTestTree(t, other, testtree.Spec{Seed: 92, Files: 50})
	repo := filepath.Join(dir, "repo")
	mustSnap(t, "init", "-q", "-r", repo)
	idA := create(t, repo, src).SnapshotID
	stateA := filepath.Join(dir, "stateA")
	pruneCopyDir(t, src, stateA)
	pruneWrite(t, filepath.Join(src, "notes", "added.txt"), pruneText(rng, 5000))
	idB := create(t, repo, src).SnapshotID
	idC := create(t, repo, other).SnapshotID

	// The data blob nearest the middle of the largest pack, and its file.
	owner, _ := pruneTreeFiles(t, repo, pruneSnapshotTree(t, repo, idA))
	var victim packOnDisk
	for _, pf := range packsOnDisk(t, repo) {
		if pf.Size > victim.Size {
			victim = pf
		}
	}
	mid := uint64(victim.Size / 2)
	var blob *trailerEntry
	for i := range victim.Entries {
		e := &victim.Entries[i]
		if e.Type == 0 && (blob == nil || blobDistance(e, mid) < blobDistance(blob, mid)) {
			blob = e
		}
	}
	if blob == nil {
		t.Fatal("the largest pack holds no data blob")
	}
	off := int64(mid)
	if off < int64(blob.Offset) || off+16 > int64(blob.Offset)+int64(blob.Length) {
		off = int64(blob.Offset) + int64(blob.Length)/2 - 8
	}
	damaged := owner[blob.ID.String()] // "/src/bin/1/random3.bin"
	if damaged == "" {
		t.Fatalf("no file of snapshot A holds blob %s", blob.ID.Short())
	}
	packID := filepath.Base(victim.Path)
	pruneFlip(t, victim.Path, off, 16)
	t.Logf("flipped 16 bytes at offset %d of pack %s, in blob %s of %s", off, packID[:8], blob.ID.Short(), damaged)

	r := snap(t, "check", "--read-data", "-r", repo)
	if r.code != 1 {
		t.Fatalf("check --read-data of a damaged pack: exit %d, want 1\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stdout, packID[:8]) {
		t.Errorf("check does not name the damaged pack %s:\n%s", packID[:8], r.stdout)
	}
	var line string
	for _, l := range strings.Split(r.stdout, "\n") {
		if strings.Contains(l, damaged) {
			if line != "" {
				t.Errorf("check names %s on more than one line:\n%s", damaged, r.stdout)
			}
			line = l
		}
	}
	if line == "" {
		t.Fatalf("check does not name the damaged file %s:\n%s", damaged, r.stdout)
	}
	for _, id := range []string{idA, idB} {
		if !strings.Contains(line, id[:8]) {
			t.Errorf("check's line for %s does not name snapshot %s: %q", damaged, id[:8], line)
		}
	}
	if strings.Contains(r.stdout, idC[:8]) {
		t.Errorf("check names snapshot %s, which does not hold the damaged data:\n%s", idC[:8], r.stdout)
	}
	t.Logf("check --read-data:\n%s", r.stdout)

	mustSnap(t, "repair", "packs", "-r", repo, packID[:12])
	if _, err := os.Stat(victim.Path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the damaged pack is still in data/ after repair packs: %v", err)
	}
	rs := mustSnap(t, "repair", "snapshots", "--forget", "-r", repo)
	if !strings.Contains(rs.stdout, damaged) {
		t.Errorf("repair snapshots does not name the lost file %s:\n%s", damaged, rs.stdout)
	}
	if r := snap(t, "check", "--read-data", "-r", repo); r.code != 0 {
		t.Fatalf("check --read-data after repair: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}

	// The snapshots now: C as it was, and one repaired copy each of A and B.
	var list []struct {
		ID       string   `json:"id"`
		Paths    []string `json:"paths"`
		Original string   `json:"original"`
		Lost     []string `json:"lost"`
		Tags     []string `json:"tags"`
	}
	if err := json.Unmarshal([]byte(mustSnap(t, "snapshots", "--json", "-r", repo).stdout), &list); err != nil {
		t.Fatal(err)
	}
	states := map[string]string{idA: stateA, idB: src}
	repaired := map[string]string{} // original -> new ID
	for _, s := range list {
		switch {
		case s.ID == idC:
		case s.ID == idA || s.ID == idB:
			t.Errorf("snapshot %s is still there after repair snapshots --forget", s.ID[:8])
		case states[s.Original] != "":
			repaired[s.Original] = s.ID
			if !slices.Equal(s.Lost, []string{damaged}) {
				t.Errorf("repaired snapshot %s records lost %v, want [%s]", s.ID[:8], s.Lost, damaged)
			}
		default:
			t.Errorf("unexpected snapshot %s (original %q)", s.ID, s.Original)
		}
	}
	if len(list) != 3 || len(repaired) != 2 {
		t.Fatalf("after repair: %d snapshots, %d of them repairs of A and B; want C and the two repairs", len(list), len(repaired))
	}

	rel := strings.TrimPrefix(damaged, "/src/")
	for orig, id := range repaired {
		o := t.TempDir() // not tmpfs: it needs user xattrs
		mustSnap(t, "restore", "-q", "-r", repo, id, "--target", o)
		got := filepath.Join(o, "src", rel)
		fi, err := os.Lstat(got)
		if err != nil {
			t.Errorf("restore of %s: the damaged file is missing: %v", id[:8], err)
		} else if !fi.Mode().IsRegular() || fi.Size() != 0 {
			t.Errorf("restore of %s: the damaged file is %v of %d bytes, want an empty file", id[:8], fi.Mode(), fi.Size())
		}
		buf := make([]byte, 4096)
		n, err := unix.Lgetxattr(got, "user.snap.damaged", buf)
		if err != nil {
			t.Errorf("restore of %s: the damaged file has no xattr user.snap.damaged: %v", id[:8], err)
		} else {
			t.Logf("user.snap.damaged = %q", buf[:n])
		}
		compareTreesExcept(t, states[orig], filepath.Join(o, "src"), map[string]bool{rel: true})
	}
	o := restoreScratchDir(t)
	mustSnap(t, "restore", "-q", "-r", repo, idC, "--target", o)
	compareTrees(t, other, filepath.Join(o, "other"))
}

// --- 3b. check --read-data-subset ------------------------------------------

var pruneReadingRE = regexp.MustCompile(`(?m)^reading (\d+) of (\d+) packs`)

// pruneReading runs check with args and returns the numbers of its
// "reading N of M packs" line.
func pruneReading(t testing.TB, r result) (n, m int) {
	t.Helper()
	g := pruneReadingRE.FindStringSubmatch(r.stdout)
	if g == nil {
		t.Fatalf("no 'reading N of M packs' line in the output of check:\n%s", r.stdout)
	}
	n, _ = strconv.Atoi(g[1])
	m, _ = strconv.Atoi(g[2])
	return n, m
}

// TestCheckReadDataSubset makes a repository of 24 packs (one per create),
// then requires that check --read-data-subset 1/3, 2/3 and 3/3 read N1 + N2
// + N3 = 24 packs; on a copy where every pack is damaged, the packs each
// part reports as damaged are exactly N of them, no pack in two parts, and
// together every pack of data/. 10% reads ceil(24/10) = 3 packs, a size of
// 1 byte one pack, 1G all of them, half the repository's size between one
// and all; bad values exit 1 without reading any pack.
func TestCheckReadDataSubset(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	rng := rand.New(rand.NewPCG(95, 95))
	repo := filepath.Join(dir, "repo")
	mustSnap(t, "init", "-q", "-r", repo)
	const packs = 24
	for i := range packs {
		pruneWrite(t, filepath.Join(src, fmt.Sprintf("d%d", i%3), fmt.Sprintf("f%02d.bin", i)), pruneRandom(rng, 40<<10+rng.IntN(40<<10)))
		create(t, repo, src)
	}
	onDisk := packsOnDisk(t, repo)
	if len(onDisk) != packs {
		t.Fatalf("%d creates made %d packs, want one each", packs, len(onDisk))
	}
	sum := 0
	for part := 1; part <= 3; part++ {
		r := mustSnap(t, "check", "--read-data-subset", fmt.Sprintf("%d/3", part), "-r", repo)
		n, m := pruneReading(t, r)
		if m != packs {
			t.Errorf("part %d/3: reading %d of %d packs, want of %d", part, n, m, packs)
		}
		sum += n
	}
	if sum != packs {
		t.Errorf("the parts 1/3, 2/3, 3/3 read %d packs together, want %d", sum, packs)
	}

	// Every pack damaged: each part names the packs it read.
	bad := filepath.Join(dir, "bad")
	pruneCopyDir(t, repo, bad)
	for _, p := range packsOnDisk(t, bad) {
		pruneFlip(t, p.Path, 0, 1) // the first blob starts at 0
	}
	damagedRE := regexp.MustCompile(`(?m)^error: pack ([0-9a-f]{8}): `)
	readBy := map[string]int{}
	for part := 1; part <= 3; part++ {
		r := snap(t, "check", "--read-data-subset", fmt.Sprintf("%d/3", part), "-r", bad)
		n, _ := pruneReading(t, r)
		names := map[string]bool{}
		for _, g := range damagedRE.FindAllStringSubmatch(r.stdout, -1) {
			names[g[1]] = true
		}
		if n > 0 && r.code != 1 {
			t.Errorf("part %d/3 read %d damaged packs and exited %d, want 1", part, n, r.code)
		}
		if len(names) != n {
			t.Errorf("part %d/3: reading %d packs, but %d damaged packs named:\n%s", part, n, len(names), r.stdout)
		}
		for name := range names {
			if prev, ok := readBy[name]; ok {
				t.Errorf("pack %s is read by part %d/3 and by part %d/3", name, prev, part)
			}
			readBy[name] = part
		}
	}
	for name := range onDisk {
		if _, ok := readBy[name[:8]]; !ok {
			t.Errorf("pack %s is read by none of the parts 1/3, 2/3, 3/3", name[:8])
		}
	}
	if len(readBy) != len(onDisk) {
		t.Errorf("the parts read %d distinct packs, data/ holds %d", len(readBy), len(onDisk))
	}

	// Percentages and sizes.
	total := packsSize(onDisk)
	for _, c := range []struct {
		subset     string
		min, max   int
		whatExpect string
	}{
		{"10%", 3, 3, "ceil(10% of 24)"},
		{"100%", packs, packs, "all"},
		{"1", 1, 1, "one pack, even though it is larger than 1 byte"},
		{"1G", packs, packs, "all"},
		{strconv.FormatInt(total/2, 10), 1, packs - 1, "some but not all"},
	} {
		r := snap(t, "check", "--read-data-subset", c.subset, "-r", repo)
		if r.code != 0 {
			t.Errorf("check --read-data-subset %s: exit %d\nstdout: %s\nstderr: %s", c.subset, r.code, r.stdout, r.stderr)
			continue
		}
		if n, m := pruneReading(t, r); n < c.min || n > c.max || m != packs {
			t.Errorf("check --read-data-subset %s: reading %d of %d packs, want %s (%d to %d of %d)", c.subset, n, m, c.whatExpect, c.min, c.max, packs)
		}
	}
	for _, v := range []string{"0/3", "4/3", "3/0", "-1/3", "x/3", "1/3/5", "0%", "101%", "-5%", "abc%", "abc", "-1M", "1/"} {
		r := snap(t, "check", "--read-data-subset", v, "-r", repo)
		if r.code != 1 {
			t.Errorf("check --read-data-subset %q: exit %d, want 1\nstdout: %s\nstderr: %s", v, r.code, r.stdout, r.stderr)
		}
		if !strings.Contains(r.stderr, "--read-data-subset") {
			t.Errorf("check --read-data-subset %q: the error does not name the flag: %s", v, r.stderr)
		}
		if pruneReadingRE.MatchString(r.stdout) {
			t.Errorf("check --read-data-subset %q read packs:\n%s", v, r.stdout)
		}
	}
}

// --- 4. prune and unreadable trees -----------------------------------------

// TestPruneRefusesUnreadableTree backs up a tree, changes it and backs it up
// twice more (second and third, with the same tree), forgets the first
// snapshot (so a prune would delete something), and makes a subdirectory's
// tree blob of the kept snapshots unreadable in three ways, each on its own
// copy of the repository: its pack deleted (the index still lists it), the
// same followed by 'snap repair index' (the blob is then not in the index at
// all), and 16 bytes of the tree blob flipped. Each time 'snap prune' (also
// with --max-unused 0% and --dry-run), 'snap forget --keep-last 1 --prune
// --dry-run' and finally a real 'snap forget --keep-last 1 --prune' must
// exit 1 with an error that says to run 'snap check', and leave every pack
// file as it was, and the snapshots too (but for the one the real forget
// removes).
func TestPruneRefusesUnreadableTree(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	writeTestTree(t, src, testtree.Spec{Seed: 101, Files: 300, Large: []int{2 << 20}})
	base := filepath.Join(dir, "base")
	mustSnap(t, "init", "-q", "-r", base)
	first := create(t, base, src).SnapshotID
	pruneMutate(t, src, rand.New(rand.NewPCG(102, 102)), 1)
	second := create(t, base, src).SnapshotID
	third := create(t, base, src).SnapshotID
	mustSnap(t, "forget", "-q", "-r", base, first)
	if a, b := pruneSnapshotTree(t, base, second), pruneSnapshotTree(t, base, third); a != b {
		t.Fatalf("two backups of an unchanged tree have different trees %s and %s", a[:8], b[:8])
	}

	// A directory's tree blob that only the kept snapshot has (new1/sub,
	// which the change made).
	_, dirs := pruneTreeFiles(t, base, pruneSnapshotTree(t, base, second))
	treeID := dirs["/src/new1/sub"]
	if treeID == "" {
		t.Fatalf("the second snapshot has no /src/new1/sub: %v", dirs)
	}

	for _, how := range []string{"pack deleted", "pack deleted, index repaired", "tree blob damaged"} {
		t.Run(strings.ReplaceAll(how, " ", "_"), func(t *testing.T) {
			repo := filepath.Join(t.TempDir(), "repo")
			pruneCopyDir(t, base, repo)
			p, e := pruneFindBlob(t, packsOnDisk(t, repo), treeID)
			switch how {
			case "tree blob damaged":
				pruneFlip(t, p.Path, int64(e.Offset)+int64(e.Length)/2-8, 16)
			default:
				if err := os.Remove(p.Path); err != nil {
					t.Fatal(err)
				}
				if how == "pack deleted, index repaired" {
					mustSnap(t, "repair", "index", "-r", repo)
				}
			}
			before := packsOnDisk(t, repo)
			snapsBefore := pruneSnapshotIDs(t, repo)
			for _, args := range [][]string{
				{"prune"},
				{"prune", "--max-unused", "0%"},
				{"prune", "--dry-run"},
				{"forget", "--keep-last", "1", "--prune", "--dry-run"},
				{"forget", "--keep-last", "1", "--prune"},
			} {
				if args[0] == "forget" && len(args) == 4 {
					// The real forget removes the second snapshot first.
					snapsBefore = []string{third}
				}
				r := snap(t, append(args, "-r", repo)...)
				if r.code != 1 {
					t.Errorf("snap %s with a tree blob %s: exit %d, want 1\nstdout: %s\nstderr: %s", strings.Join(args, " "), how, r.code, r.stdout, r.stderr)
				}
				if !strings.Contains(r.stderr, "snap check") {
					t.Errorf("snap %s with a tree blob %s: the error does not say to run 'snap check':\n%s", strings.Join(args, " "), how, r.stderr)
				}
				pruneSamePacks(t, "after snap "+strings.Join(args, " "), before, packsOnDisk(t, repo))
				if got := pruneSnapshotIDs(t, repo); !slices.Equal(got, snapsBefore) {
					t.Errorf("after snap %s: snapshots %v, want %v", strings.Join(args, " "), got, snapsBefore)
				}
			}
		})
	}
}

// --- 5. prune and the write lock --------------------------------------------

// TestPruneLock runs prune while a real create of a ~200 MiB tree holds the
// write lock (exit 11, naming the create's pid and command), then while this
// test holds the lock (exit 11 naming the holder's pid, host and command;
// nothing deleted), and with --lock-wait 30s, which must wait while the lock
// is held and succeed, freeing the data of a forgotten snapshot, once it is
// released.
func TestPruneLock(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	writeTestTree(t, src, testtree.Spec{Seed: 111, Files: 200, Large: []int{8 << 20}})
	repo := filepath.Join(dir, "repo")
	mustSnap(t, "init", "-q", "-r", repo)
	first := create(t, repo, src).SnapshotID
	pruneMutate(t, src, rand.New(rand.NewPCG(112, 112)), 1)
	create(t, repo, src)
	mustSnap(t, "forget", "-q", "-r", repo, first)
	before := packsOnDisk(t, repo)

	// A create of a large tree holds the lock.
	big := filepath.Join(dir, "big")
	if err := os.Mkdir(big, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := testtree.RandomFile(filepath.Join(big, "big.bin"), 113, 200<<20); err != nil {
		t.Fatal(err)
	}
	cr := startBgSnap(t, "create", "-r", repo, big)
	pid := cr.cmd.Process.Pid
	for lockHolderPID(repo) != pid && !cr.exited() {
		time.Sleep(time.Millisecond)
	}
	r := snap(t, "prune", "-r", repo)
	if cr.exited() {
		rc, _ := cr.wait()
		t.Fatalf("the create of 200 MiB ended (exit %d) before prune finished; cannot tell whether prune waited for it\nprune: exit %d %s", rc.code, r.code, r.stderr)
	}
	cr.kill()
	cr.wait()
	if r.code != 11 {
		t.Errorf("prune while a create runs: exit %d, want 11\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	for _, re := range []string{`\b` + strconv.Itoa(pid) + `\b`, `\bcreate\b`} {
		if !regexp.MustCompile(re).MatchString(r.stderr) {
			t.Errorf("prune's locked error does not match %s (pid and command of the running create):\n%s", re, r.stderr)
		}
	}

	// This test holds the lock.
	unlock, err := local.New(repo).Lock(context.Background(), backend.LockInfo{Host: "lockhost", PID: 4343, Command: "create", Start: time.Now()}, 0)
	if err != nil {
		t.Fatal(err)
	}
	released := false
	defer func() {
		if !released {
			unlock()
		}
	}()
	held := packsOnDisk(t, repo) // the killed create may have left packs
	r = snap(t, "prune", "-r", repo)
	if r.code != 11 {
		t.Errorf("prune while the lock is held: exit %d, want 11\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	for _, re := range []string{`\b4343\b`, `\blockhost\b`, `\bcreate\b`} {
		if !regexp.MustCompile(re).MatchString(r.stderr) {
			t.Errorf("prune's locked error does not match %s (pid, host, command of the holder):\n%s", re, r.stderr)
		}
	}
	pruneSamePacks(t, "after a prune that found the repository locked", held, packsOnDisk(t, repo))

	p := startBgSnap(t, "prune", "--lock-wait", "30s", "-r", repo)
	time.Sleep(1500 * time.Millisecond)
	if p.exited() {
		r, _ := p.wait()
		t.Fatalf("prune --lock-wait 30s ended while the lock was held: exit %d\nstderr: %s", r.code, r.stderr)
	}
	pruneSamePacks(t, "while prune --lock-wait waits", held, packsOnDisk(t, repo))
	released = true
	if err := unlock(); err != nil {
		t.Fatal(err)
	}
	if r, _ := p.wait(); r.code != 0 {
		t.Fatalf("prune --lock-wait 30s after the lock was released: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	after := packsOnDisk(t, repo)
	if packsSize(after) >= packsSize(before) {
		t.Errorf("the waiting prune freed nothing: %d pack bytes before the forgotten snapshot was pruned, %d after", packsSize(before), packsSize(after))
	}
	mustSnap(t, "check", "--read-data", "-r", repo)
	o := restoreScratchDir(t)
	mustSnap(t, "restore", "-q", "-r", repo, "latest", "--target", o)
	compareTrees(t, src, filepath.Join(o, "src"))
}

// TestPruneAndReaders checks that readers and a prune keep apart on a local
// repository: a prune that would remove packs while another process holds
// the read lock (here this test, so the prune must name its pid) exits 11
// and changes nothing, and one that has nothing to remove runs; a reader
// while a prune holds the lock exits 11 naming the prune, unless
// --no-lock; a backup goes on beside both.
func TestPruneAndReaders(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	writeTestTree(t, src, testtree.Spec{Seed: 121, Files: 100, Large: []int{2 << 20}})
	repo := filepath.Join(dir, "repo")
	mustSnap(t, "init", "-q", "-r", repo)
	first := create(t, repo, src).SnapshotID
	pruneMutate(t, src, rand.New(rand.NewPCG(122, 122)), 1)
	create(t, repo, src)
	ctx := context.Background()

	unlock, err := local.New(repo).LockRead(ctx, backend.LockInfo{Host: "h", PID: os.Getpid(), Command: "restore"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	mustSnap(t, "prune", "-q", "-r", repo) // nothing to remove yet: runs beside the reader
	mustSnap(t, "forget", "-q", "-r", repo, first)
	before := packsOnDisk(t, repo)
	r := snap(t, "prune", "-r", repo)
	if r.code != 11 || !strings.Contains(r.stderr, "being read by") || !regexp.MustCompile(`\b`+strconv.Itoa(os.Getpid())+`\b`).MatchString(r.stderr) {
		t.Errorf("prune beside a reader: exit %d, want 11 naming the reader (pid %d)\nstderr: %s", r.code, os.Getpid(), r.stderr)
	}
	pruneSamePacks(t, "after a prune that found a reader", before, packsOnDisk(t, repo))
	create(t, repo, src) // a backup goes on beside a reader
	if err := unlock(); err != nil {
		t.Fatal(err)
	}
	mustSnap(t, "prune", "-q", "-r", repo)
	if after := packsOnDisk(t, repo); packsSize(after) >= packsSize(before) {
		t.Errorf("prune after the reader left freed nothing: %d pack bytes, were %d", packsSize(after), packsSize(before))
	}

	release, err := local.New(repo).ExcludeReaders(ctx, backend.LockInfo{Host: "h", PID: 4545, Command: "prune", Start: time.Now()}, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	for _, cmd := range [][]string{{"ls", "-r", repo, "latest"}, {"restore", "-r", repo, "latest", "--target", filepath.Join(dir, "out")}, {"check", "-r", repo}} {
		r := snap(t, cmd...)
		if r.code != 11 || !strings.Contains(r.stderr, "4545") || !strings.Contains(r.stderr, "prune") {
			t.Errorf("%s during a prune: exit %d, want 11 naming the prune\nstderr: %s", cmd[0], r.code, r.stderr)
		}
	}
	if r := snap(t, "ls", "--no-lock", "-r", repo, "latest"); r.code != 0 || !strings.Contains(r.stdout, "src") {
		t.Errorf("ls --no-lock during a prune: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	create(t, repo, src) // a backup does not wait for readers or prunes' read lock
}

// TestReadWithoutLockAccess checks that a user who may read a repository but
// not its locks/ directory (another user's backups) still reads: without
// the read lock, as before there was one.
func TestReadWithoutLockAccess(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run snap as another user")
	}
	dir := t.TempDir()
	repo := filepath.Join(dir, "repo")
	mustSnap(t, "init", "-q", "-r", repo)
	src := filepath.Join(dir, "src")
	writeTestTree(t, src, testtree.Spec{Seed: 131, Files: 10})
	create(t, repo, src)
	mustSnap(t, "ls", "-q", "-r", repo, "latest") // as root: makes locks/read
	// Everything readable by others but locks/, and the test binary too.
	for _, d := range []string{dir, filepath.Dir(snapBin)} {
		if err := exec.Command("chmod", "-R", "o+rX", d).Run(); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(filepath.Dir(dir), 0o755); err != nil { // the test's own parent directory
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(repo, "locks"), 0o700); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(snapBin, "ls", "-r", repo, "latest")
	cmd.Env = append(os.Environ(), "SNAP_REPOSITORY=", "HOME="+dir, "XDG_CACHE_HOME="+dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "src") {
		t.Fatalf("ls as a user who may not open locks/: %v\n%s", err, out)
	}
}

// TestReadLockFails: a reader that cannot take the read lock for another
// reason than a prune says so and points to --no-lock, which reads.
func TestReadLockFails(t *testing.T) {
	dir := t.TempDir()
	repo := filepath.Join(dir, "repo")
	mustSnap(t, "init", "-q", "-r", repo)
	src := filepath.Join(dir, "src")
	writeTestTree(t, src, testtree.Spec{Seed: 141, Files: 5})
	create(t, repo, src)
	// locks/ a file instead of a directory: no lock can be taken in it.
	if err := os.RemoveAll(filepath.Join(repo, "locks")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(repo, "locks"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if r := snap(t, "ls", "-r", repo, "latest"); r.code != 1 || !strings.Contains(r.stderr, "--no-lock") {
		t.Errorf("ls without a possible read lock: exit %d, want 1 pointing to --no-lock\nstderr: %s", r.code, r.stderr)
	}
	if r := mustSnap(t, "ls", "--no-lock", "-r", repo, "latest"); !strings.Contains(r.stdout, "src") {
		t.Errorf("ls --no-lock: %s", r.stdout)
	}
}

// --- 6. forget --prune --dry-run ---------------------------------------------

// TestForgetPruneDryRunListsLostFiles backs up a tree, then deletes two
// directories of it, changes one file and adds one, and backs it up again.
// forget --keep-last 1 --prune --dry-run must list exactly the five file
// versions only the first snapshot holds (in four directories), grouped by directory with the
// number of files and their size per directory and each file's size and
// snapshot, change nothing (same packs, same snapshots); --json says the same
// with exact sizes. The real forget --keep-last 1 --prune then frees at
// least the size of the random data only the first snapshot held, and the
// kept snapshot restores whole.
func TestForgetPruneDryRunListsLostFiles(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	rng := rand.New(rand.NewPCG(121, 121))
	files := map[string][]byte{
		"keep/common.txt":    pruneText(rng, 30000),
		"gone1/a.bin":        pruneRandom(rng, 300<<10),
		"gone1/b.txt":        pruneText(rng, 20000),
		"gone2/deep/c.bin":   pruneRandom(rng, 1<<20),
		"changed.txt":        pruneText(rng, 7000),
		"gone2/deep/d/e.bin": pruneRandom(rng, 5000),
	}
	for p, data := range files {
		pruneWrite(t, filepath.Join(src, p), data)
	}
	repo := filepath.Join(dir, "repo")
	mustSnap(t, "init", "-q", "-r", repo)
	first := create(t, repo, src).SnapshotID
	for _, d := range []string{"gone1", "gone2"} {
		if err := os.RemoveAll(filepath.Join(src, d)); err != nil {
			t.Fatal(err)
		}
	}
	pruneWrite(t, filepath.Join(src, "changed.txt"), pruneText(rng, 8000))
	pruneWrite(t, filepath.Join(src, "new", "n.txt"), pruneText(rng, 3000))
	second := create(t, repo, src).SnapshotID

	type lost struct {
		dir, name string
		size      int64
	}
	want := []lost{
		{"/src", "changed.txt", int64(len(files["changed.txt"]))},
		{"/src/gone1", "a.bin", int64(len(files["gone1/a.bin"]))},
		{"/src/gone1", "b.txt", int64(len(files["gone1/b.txt"]))},
		{"/src/gone2/deep", "c.bin", int64(len(files["gone2/deep/c.bin"]))},
		{"/src/gone2/deep/d", "e.bin", int64(len(files["gone2/deep/d/e.bin"]))},
	}
	var wantTotal int64
	for _, l := range want {
		wantTotal += l.size
	}

	packsBefore := packsOnDisk(t, repo)
	snapsBefore := pruneSnapshotIDs(t, repo)
	r := mustSnap(t, "forget", "--keep-last", "1", "--prune", "--dry-run", "-r", repo)
	t.Logf("forget --keep-last 1 --prune --dry-run:\n%s", r.stdout)
	out := r.stdout
	head := fmt.Sprintf("%d files (%s) become unrecoverable", len(want), formatBytes(wantTotal))
	i := strings.Index(out, head)
	if i < 0 {
		t.Fatalf("the dry run does not say %q:\n%s", head, out)
	}
	// After the header: per directory a line "  DIR/  (N files, SIZE)", then
	// its files "    NAME  SIZE  in ID".
	listing := strings.Split(strings.TrimRight(out[i:], "\n"), "\n")[1:]
	dirRE := regexp.MustCompile(`^  (\S+)/  \((\d+) files, ([^)]+)\)$`)
	fileRE := regexp.MustCompile(`^    (\S+)\s+(\d+(?:\.\d)? [KMG]?i?B)\s+in (\S+)$`)
	var got []lost
	curDir := ""
	dirFiles := map[string]int{}
	dirSizes := map[string]string{}
	for _, l := range listing {
		if g := dirRE.FindStringSubmatch(l); g != nil {
			curDir = g[1]
			n, _ := strconv.Atoi(g[2])
			dirFiles[curDir] = n
			dirSizes[curDir] = g[3]
			continue
		}
		g := fileRE.FindStringSubmatch(l)
		if g == nil || curDir == "" {
			t.Errorf("unexpected line in the list of unrecoverable files: %q", l)
			continue
		}
		if g[3] != first[:8] {
			t.Errorf("%s/%s: listed as in snapshot %s, want %s", curDir, g[1], g[3], first[:8])
		}
		var size int64 = -1
		for _, w := range want {
			if w.dir == curDir && w.name == g[1] {
				size = w.size
				if g[2] != formatBytes(w.size) {
					t.Errorf("%s/%s: listed with size %s, want %s", curDir, g[1], g[2], formatBytes(w.size))
				}
			}
		}
		got = append(got, lost{curDir, g[1], size})
	}
	if len(got) != len(want) {
		t.Errorf("the dry run lists %d unrecoverable files %v, want %d %v", len(got), got, len(want), want)
	} else {
		for k := range want {
			if got[k] != want[k] {
				t.Errorf("unrecoverable file %d: %v, want %v", k, got[k], want[k])
			}
		}
	}
	wantDirs := map[string]int64{}
	wantCount := map[string]int{}
	for _, w := range want {
		wantDirs[w.dir] += w.size
		wantCount[w.dir]++
	}
	for d, size := range wantDirs {
		if dirFiles[d] != wantCount[d] || dirSizes[d] != formatBytes(size) {
			t.Errorf("directory %s/: listed with %d files, %s; want %d files, %s", d, dirFiles[d], dirSizes[d], wantCount[d], formatBytes(size))
		}
	}
	if len(dirFiles) != len(wantDirs) {
		t.Errorf("the dry run groups the files in %d directories, want %d", len(dirFiles), len(wantDirs))
	}

	// --json: the same list with exact sizes.
	rj := mustSnap(t, "forget", "--keep-last", "1", "--prune", "--dry-run", "--json", "-r", repo)
	dec := json.NewDecoder(strings.NewReader(rj.stdout))
	var groups []json.RawMessage
	var prune struct {
		DryRun bool `json:"dry_run"`
		Lost   []struct {
			Path      string   `json:"path"`
			Size      int64    `json:"size"`
			Snapshots []string `json:"snapshots"`
		} `json:"unrecoverable_files"`
	}
	if err := dec.Decode(&groups); err != nil {
		t.Fatalf("forget --json: %v\n%s", err, rj.stdout)
	}
	if err := dec.Decode(&prune); err != nil {
		t.Fatalf("forget --prune --json: the prune report: %v\n%s", err, rj.stdout)
	}
	if !prune.DryRun || len(prune.Lost) != len(want) {
		t.Errorf("forget --prune --dry-run --json: dry_run %v, %d unrecoverable files, want true and %d\n%s", prune.DryRun, len(prune.Lost), len(want), rj.stdout)
	} else {
		for k, w := range want {
			l := prune.Lost[k]
			if l.Path != w.dir+"/"+w.name || l.Size != w.size || !slices.Equal(l.Snapshots, []string{first[:8]}) {
				t.Errorf("--json unrecoverable file %d: %+v, want %s/%s, %d bytes, in %s", k, l, w.dir, w.name, w.size, first[:8])
			}
		}
	}

	pruneSamePacks(t, "after forget --prune --dry-run", packsBefore, packsOnDisk(t, repo))
	if got := pruneSnapshotIDs(t, repo); !slices.Equal(got, snapsBefore) {
		t.Errorf("after forget --prune --dry-run: snapshots %v, want %v", got, snapsBefore)
	}

	// For real.
	mustSnap(t, "forget", "--keep-last", "1", "--prune", "-r", repo)
	if got := pruneSnapshotIDs(t, repo); !slices.Equal(got, []string{second}) {
		t.Errorf("after forget --keep-last 1 --prune: snapshots %v, want [%s]", got, second)
	}
	freed := packsSize(packsBefore) - packBytes(t, repo)
	randomLost := int64(len(files["gone1/a.bin"]) + len(files["gone2/deep/c.bin"]) + len(files["gone2/deep/d/e.bin"]))
	t.Logf("forget --prune freed %d bytes; the random data only the first snapshot held is %d bytes", freed, randomLost)
	if freed < randomLost {
		t.Errorf("forget --prune freed %d bytes, less than the %d bytes of random data only the removed snapshot held", freed, randomLost)
	}
	mustSnap(t, "check", "--read-data", "-r", repo)
	o := restoreScratchDir(t)
	mustSnap(t, "restore", "-q", "-r", repo, second, "--target", o)
	compareTrees(t, src, filepath.Join(o, "src"))
}

// --- 7. stats ---------------------------------------------------------------

// TestStats backs up a tree twice without changes and once more after
// replacing one 2 MiB file, and checks 'snap stats --json' against the
// source and the packs: the restore size of all snapshots is the sum of the
// file sizes of the three trees, the file count likewise; unique raw and
// stored bytes equal those of the distinct blobs in the packs; the dedup
// ratio is restore size / unique raw and above 1.9 for the two identical
// snapshots; the second snapshot adds 0 blobs and 0 bytes, the third about
// the 2 MiB that changed. The text output shows the same numbers.
func TestStats(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	writeTestTree(t, src, testtree.Spec{Seed: 131, Files: 300, Large: []int{6 << 20}})
	changed := filepath.Join(src, "changing.bin")
	if err := testtree.RandomFile(changed, 132, 2<<20); err != nil {
		t.Fatal(err)
	}
	repo := filepath.Join(dir, "repo")
	mustSnap(t, "init", "-q", "-r", repo)
	size1, files1 := pruneFileSizes(t, src)
	s1 := create(t, repo, src).SnapshotID
	s2 := create(t, repo, src).SnapshotID

	two := pruneStatsJSON(t, repo)
	packs := packsOnDisk(t, repo)
	copies, stored := pruneBlobCopies(packs)
	raw := packsUniqueRaw(packs)
	st := two.Stats
	if st.Snapshots != 2 || len(st.Per) != 2 || st.Per[0].ID != s1 || st.Per[1].ID != s2 {
		t.Fatalf("stats of two snapshots: %+v", st)
	}
	if st.RestoreSize != 2*size1 || st.Files != 2*files1 {
		t.Errorf("restore size %d in %d files, want 2 x %d bytes in 2 x %d files", st.RestoreSize, st.Files, size1, files1)
	}
	if st.UniqueBlobs != int64(len(copies)) || st.UniqueRaw != raw || st.UniqueStored != stored {
		t.Errorf("unique: %d blobs, %d raw, %d stored bytes; the packs hold %d blobs, %d raw, %d stored bytes",
			st.UniqueBlobs, st.UniqueRaw, st.UniqueStored, len(copies), raw, stored)
	}
	if want := float64(st.RestoreSize) / float64(st.UniqueRaw); math.Abs(st.DedupRatio-want) > 1e-9*want {
		t.Errorf("dedup ratio %v, want restore size / unique raw = %v", st.DedupRatio, want)
	}
	if st.DedupRatio <= 1.9 {
		t.Errorf("dedup ratio of two identical snapshots is %.3f, want about 2", st.DedupRatio)
	}
	if want := float64(st.UniqueRaw) / float64(st.UniqueStored); math.Abs(st.CompressRatio-want) > 1e-9*want || st.CompressRatio <= 1 {
		t.Errorf("compression ratio %v, want unique raw / unique stored = %v (> 1: the tree has text)", st.CompressRatio, want)
	}
	if p := st.Per[0]; p.RestoreSize != size1 || p.Files != files1 || p.AddedBlobs != int64(len(copies)) || p.AddedStored != stored {
		t.Errorf("first snapshot: %+v, want restore size %d, %d files, adding all %d blobs (%d bytes)", p, size1, files1, len(copies), stored)
	}
	if p := st.Per[1]; p.RestoreSize != size1 || p.Files != files1 || p.AddedBlobs != 0 || p.AddedStored != 0 {
		t.Errorf("second, identical snapshot: %+v, want restore size %d, %d files, nothing added", p, size1, files1)
	}
	if two.Packs != len(packs) || two.Blobs != len(copies) {
		t.Errorf("repository: %d packs, %d blobs; data/ holds %d packs of %d blobs", two.Packs, two.Blobs, len(packs), len(copies))
	}

	// The text output.
	txt := mustSnap(t, "stats", "-r", repo).stdout
	for _, want := range []string{
		fmt.Sprintf("restore size:       %s in %d files", formatBytes(2*size1), 2*files1),
		fmt.Sprintf("dedup ratio:        %.2fx", st.DedupRatio),
		fmt.Sprintf("unique data:        %s in %d blobs", formatBytes(raw), len(copies)),
	} {
		if !strings.Contains(txt, want) {
			t.Errorf("stats output lacks %q:\n%s", want, txt)
		}
	}
	if !regexp.MustCompile(`(?m)^\s*` + s2[:8] + `\s+\S+ \S+\s+\d+\s+0\s+0 B\s*$`).MatchString(txt) {
		t.Errorf("stats output does not show 0 added blobs (0 B) for the second snapshot %s:\n%s", s2[:8], txt)
	}

	// A third snapshot after replacing a 2 MiB file.
	if err := testtree.RandomFile(changed, 133, 2<<20); err != nil {
		t.Fatal(err)
	}
	size3, files3 := pruneFileSizes(t, src)
	s3 := create(t, repo, src).SnapshotID
	three := pruneStatsJSON(t, repo).Stats
	if three.Snapshots != 3 || len(three.Per) != 3 || three.Per[2].ID != s3 {
		t.Fatalf("stats of three snapshots: %+v", three)
	}
	if three.RestoreSize != 2*size1+size3 || three.Files != 2*files1+files3 {
		t.Errorf("restore size %d in %d files, want %d in %d", three.RestoreSize, three.Files, 2*size1+size3, 2*files1+files3)
	}
	if a := three.Per[2].AddedStored; a < 2<<20 || a > 2<<20+64<<10 {
		t.Errorf("the third snapshot adds %d stored bytes, want the 2 MiB of random data that changed plus its trees", a)
	}
	if three.Per[1].AddedBlobs != 0 {
		t.Errorf("the second snapshot adds %d blobs, want 0", three.Per[1].AddedBlobs)
	}
	one := pruneStatsJSON(t, repo, s3).Stats
	if one.Snapshots != 1 || one.RestoreSize != size3 || one.Files != files3 {
		t.Errorf("stats of the third snapshot alone: %d snapshots, restore size %d in %d files; want 1, %d in %d", one.Snapshots, one.RestoreSize, one.Files, size3, files3)
	}
}
