package snapshot

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"snap/chunk"
	"snap/index"
	"snap/internal/backend"
	"snap/internal/backend/local"
	"snap/repo"
	"snap/repo/pack"
)

// The retention simulation: two years of hourly backups of a small tree
// that is edited once a day, with the retention policy applied and the
// repository pruned once a week, all in this process on real files.

// simPolicy is the policy of the simulation, applied in UTC.
var simPolicy = Policy{Hourly: 24, Daily: 14, Weekly: 8, Monthly: 24}

// simDirs are the directories of the simulated tree; they are never removed.
var simDirs = []string{"", "a", "b", "c", "c/d"}

// simFile is one file of the tree at some moment.
type simFile struct {
	data  []byte
	mtime time.Time
}

// simState is the whole tree at some moment: file path (relative, slash
// separated) to content. States are never changed once recorded.
type simState map[string]simFile

var simWords = strings.Fields("retention keeps the newest snapshot of every hour day week and month " +
	"that the policy names while prune gives back what no snapshot needs")

// simContent returns the content of a file version: text or random bytes,
// 200 to 3000 bytes, different for every (day, n).
func simContent(day, n int) []byte {
	rng := rand.New(rand.NewPCG(uint64(day), uint64(n)))
	size := 200 + rng.IntN(2800)
	var b []byte
	if rng.IntN(3) == 0 {
		b = make([]byte, size)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	b = fmt.Appendf(nil, "version of day %d, edit %d\n", day, n)
	for len(b) < size {
		b = append(b, simWords[rng.IntN(len(simWords))]...)
		b = append(b, " \n"[rng.IntN(2)])
	}
	return b[:size]
}

// simEdit applies day's edit to the tree at root and to a copy of st, and
// returns the new state: one file changed, one added, one deleted. Every
// 60th day the changed file gets the content that the edit of 45 days
// earlier wrote (a reverted change), so data that a prune deleted is
// stored again.
func simEdit(t *testing.T, root string, st simState, day int, at time.Time) simState {
	t.Helper()
	rng := rand.New(rand.NewPCG(uint64(day), 0xed17))
	next := simState{}
	for p, f := range st {
		next[p] = f
	}
	paths := make([]string, 0, len(next))
	for p := range next {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	write := func(p string, data []byte) {
		full := filepath.Join(root, filepath.FromSlash(p))
		if err := os.WriteFile(full, data, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(full, at, at); err != nil {
			t.Fatal(err)
		}
		next[p] = simFile{data, at}
	}
	changed := paths[rng.IntN(len(paths))]
	data := simContent(day, 0)
	if simReverts(day) {
		data = simContent(day-45, 0)
	}
	write(changed, data)
	added := filepath.ToSlash(filepath.Join(simDirs[rng.IntN(len(simDirs))], fmt.Sprintf("f%04d.txt", day)))
	write(added, simContent(day, 1))
	victim := changed
	for victim == changed {
		victim = paths[rng.IntN(len(paths))]
	}
	if err := os.Remove(filepath.Join(root, filepath.FromSlash(victim))); err != nil {
		t.Fatal(err)
	}
	delete(next, victim)
	return next
}

// simReverts reports whether day's change brings back older content.
func simReverts(day int) bool { return day%60 == 59 }

// simExpected is the independent expectation of simPolicy over snapshot
// times: for each rule, group the times by calendar bucket (UTC), take the
// newest time of each of the N newest buckets; if a rule has fewer buckets
// than N, the oldest time is kept too (restic's rule). The result is the
// union.
func simExpected(times []time.Time) map[time.Time]bool {
	keep := map[time.Time]bool{}
	if len(times) == 0 {
		return keep
	}
	oldest := slices.MinFunc(times, func(a, b time.Time) int { return a.Compare(b) })
	rules := []struct {
		n   int
		key func(time.Time) string
	}{
		{simPolicy.Hourly, func(t time.Time) string { return t.UTC().Format("2006-01-02T15") }},
		{simPolicy.Daily, func(t time.Time) string { return t.UTC().Format("2006-01-02") }},
		{simPolicy.Weekly, func(t time.Time) string { y, w := t.UTC().ISOWeek(); return fmt.Sprintf("%04d-%02d", y, w) }},
		{simPolicy.Monthly, func(t time.Time) string { return t.UTC().Format("2006-01") }},
	}
	for _, rule := range rules {
		newest := map[string]time.Time{}
		for _, ts := range times {
			k := rule.key(ts)
			if cur, ok := newest[k]; !ok || ts.After(cur) {
				newest[k] = ts
			}
		}
		keys := make([]string, 0, len(newest))
		for k := range newest {
			keys = append(keys, k)
		}
		sort.Sort(sort.Reverse(sort.StringSlice(keys)))
		for i, k := range keys {
			if i == rule.n {
				break
			}
			keep[newest[k]] = true
		}
		if len(keys) < rule.n {
			keep[oldest] = true
		}
	}
	return keep
}

// simOpen opens the repository and takes the write lock, as every snap
// command that writes does; close releases both.
func simOpen(t *testing.T, dir, command string) (*repo.Repository, func()) {
	t.Helper()
	ctx := context.Background()
	r, err := repo.Open(ctx, local.New(dir), repo.Options{IndexPath: filepath.Join(dir, "index.db")})
	if err != nil {
		t.Fatal(err)
	}
	unlock, err := r.Lock(ctx, backend.LockInfo{Host: "sim", PID: os.Getpid(), Command: command, Start: time.Now()}, 0)
	if err != nil {
		r.Close()
		t.Fatal(err)
	}
	return r, func() {
		if err := unlock(); err != nil {
			t.Error(err)
		}
		if err := r.Close(); err != nil {
			t.Error(err)
		}
	}
}

// simCompare fails the test unless the restored tree at got is exactly st:
// the same directories, the same files with the same content, mode and mtime.
func simCompare(t *testing.T, what string, got string, st simState) {
	t.Helper()
	dirs := map[string]bool{}
	for _, d := range simDirs {
		dirs[d] = true
	}
	seen := map[string]bool{}
	err := filepath.WalkDir(got, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(got, p)
		rel = filepath.ToSlash(rel)
		if rel == "." {
			rel = ""
		}
		if d.IsDir() {
			if !dirs[rel] {
				t.Errorf("%s: unexpected directory /%s", what, rel)
			}
			seen[rel+"/"] = true
			return nil
		}
		want, ok := st[rel]
		if !ok {
			t.Errorf("%s: unexpected file /%s", what, rel)
			return nil
		}
		seen[rel] = true
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if fi.Mode() != 0o644 || !fi.ModTime().Equal(want.mtime) {
			t.Errorf("%s: /%s: mode %v, mtime %v; want -rw-r--r--, %v", what, rel, fi.Mode(), fi.ModTime().UTC(), want.mtime)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if !bytes.Equal(data, want.data) {
			t.Errorf("%s: /%s: content differs (%d bytes, want %d)", what, rel, len(data), len(want.data))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for p := range st {
		if !seen[p] {
			t.Errorf("%s: /%s is missing from the restore", what, p)
		}
	}
	for _, d := range simDirs {
		if !seen[d+"/"] {
			t.Errorf("%s: directory /%s is missing from the restore", what, d)
		}
	}
}

// simScratch is a directory on tmpfs when there is one (the simulation
// fsyncs thousands of files), else in the test's temporary directory.
func simScratch(t *testing.T) string {
	t.Helper()
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		if d, err := os.MkdirTemp("/dev/shm", "snap-sim-"); err == nil {
			t.Cleanup(func() { os.RemoveAll(d) })
			return d
		}
	}
	return t.TempDir()
}

// TestRetentionSim simulates two years (2025-01-01 to 2026-12-31, 730 days,
// 17,520 snapshots) of hourly backups at half past each hour, UTC, of a
// small tree (five directories, ten files of 200 to 3000 bytes)
// that is edited once a day at a varying hour before that hour's backup: one
// file changed (every 60th day back to its content of 45 days earlier), one
// added, one deleted. Each backup is snapshot.Create with the previous
// snapshot as parent and the simulated time. The repository handle is opened
// per simulated day with the write lock held, as separate snap runs would
// hold it. Every 7th day, and once more at the end, a separate handle under
// the write lock applies ApplyPolicy with Hourly 24, Daily 14, Weekly 8,
// Monthly 24 in UTC, removes the snapshots it does not keep, and prunes with
// PlanPrune/Prune, MaxUnusedFraction 0 (nothing unused may stay).
//
// After every prune, the remaining snapshots must be exactly those the
// policy keeps when applied to every snapshot ever made, computed
// independently of ApplyPolicy (simExpected) from the list of all snapshot
// times. At the end every remaining snapshot must restore to exactly the
// tree as it was at its time (content, modes, mtimes; the tree's states are
// kept in memory), check (CheckPacks, CheckTrees, CheckPackData on every
// pack) must find nothing, and the pack bytes must be within 10% of what
// the remaining snapshots need:
//
//	need = sum over the blobs in UsedBlobs (looked up in the index) of
//	       (stored length + 58 bytes of trailer entry) + 24 bytes of footer
//	need <= bytes of all files in data/ <= 1.10 * need
//
// Nothing indexed may be unused and every pack in data/ must be indexed.
func TestRetentionSim(t *testing.T) {
	const days = 730
	ctx := context.Background()
	base := simScratch(t)
	dir, src := filepath.Join(base, "repo"), filepath.Join(base, "src")
	initTestRepo(t, dir, 4<<10, 8<<10, 32<<10, repo.Options{}).Close()

	start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	// The initial tree: two files in each directory, dated just before.
	st := simState{}
	for i, d := range simDirs {
		if err := os.MkdirAll(filepath.Join(src, d), 0o755); err != nil {
			t.Fatal(err)
		}
		for k := range 2 {
			p := filepath.ToSlash(filepath.Join(d, fmt.Sprintf("init%d.txt", k)))
			data := simContent(-1, 2*i+k)
			at := start.Add(-time.Hour)
			if err := os.WriteFile(filepath.Join(src, p), data, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Chtimes(filepath.Join(src, p), at, at); err != nil {
				t.Fatal(err)
			}
			st[p] = simFile{data, at}
		}
	}

	var times []time.Time // every snapshot ever made
	stateOf := map[chunk.ID]simState{}
	var parent *Snapshot
	began := time.Now()
	var createTime, pruneTime time.Duration
	prunes, reverts, restored := 0, 0, 0

	prune := func(day int) {
		t0 := time.Now()
		r, closeRepo := simOpen(t, dir, "forget --prune")
		defer closeRepo()
		all, err := List(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range ApplyPolicy(all, simPolicy, time.UTC) {
			if !d.Keep {
				if err := r.RemoveSnapshotFile(ctx, d.Snapshot.ID); err != nil {
					t.Fatal(err)
				}
				delete(stateOf, d.Snapshot.ID)
			}
		}
		kept, err := List(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		used, err := UsedBlobs(ctx, r, kept)
		if err != nil {
			t.Fatalf("day %d: %v", day, err)
		}
		plan, err := r.PlanPrune(ctx, used, repo.PruneOptions{MaxUnusedFraction: 0})
		if err != nil {
			t.Fatalf("day %d: plan prune: %v", day, err)
		}
		if err := r.Prune(ctx, plan, nil); err != nil {
			t.Fatalf("day %d: prune: %v", day, err)
		}
		pruneTime += time.Since(t0)
		prunes++

		// The survivors are what the policy keeps of the whole history.
		want := simExpected(times)
		var got []time.Time
		for _, s := range kept {
			got = append(got, s.Time)
			if !want[s.Time] {
				t.Errorf("day %d: snapshot of %s is kept, the policy on the whole history removes it", day, s.Time.Format(time.DateTime))
			}
		}
		for ts := range want {
			if !slices.ContainsFunc(got, func(g time.Time) bool { return g.Equal(ts) }) {
				t.Errorf("day %d: snapshot of %s is gone, the policy on the whole history keeps it", day, ts.Format(time.DateTime))
			}
		}
		if t.Failed() {
			t.FailNow()
		}
	}

	for day := range days {
		r, closeRepo := simOpen(t, dir, "create")
		editHour := (day * 7) % 24
		for h := range 24 {
			if h == editHour {
				if simReverts(day) {
					// Was the content that comes back pruned meanwhile?
					_, found, err := r.Index().Lookup(chunk.Hash(simContent(day-45, 0)))
					if err != nil {
						t.Fatal(err)
					}
					reverts++
					if !found {
						restored++
					}
				}
				st = simEdit(t, src, st, day, start.Add(time.Duration(24*day+h)*time.Hour+10*time.Minute))
			}
			at := start.Add(time.Duration(24*day+h)*time.Hour + 30*time.Minute)
			t0 := time.Now()
			sn, err := Create(ctx, r, CreateOptions{Paths: []string{src}, Host: "sim", Time: at, Parent: parent, Workers: 2})
			if err != nil {
				t.Fatalf("create at %s: %v", at.Format(time.DateTime), err)
			}
			createTime += time.Since(t0)
			parent = sn
			times = append(times, at)
			stateOf[sn.ID] = st
		}
		closeRepo()
		if day%7 == 6 {
			prune(day)
		}
		if day == 90 {
			// Extrapolate: the whole run must stay within about two minutes.
			t.Logf("91 days took %v", time.Since(began).Round(time.Millisecond))
		}
	}
	if (days-1)%7 != 6 {
		prune(days - 1)
	}
	t.Logf("%d snapshots made in %v (create %v, %d prunes %v)", len(times), time.Since(began).Round(time.Millisecond),
		createTime.Round(time.Millisecond), prunes, pruneTime.Round(time.Millisecond))
	t.Logf("%d changes brought back content of 45 days before; %d of those had been pruned and were stored again", reverts, restored)
	if restored == 0 {
		t.Errorf("no reverted change brought back pruned data: the simulation does not test storing it again")
	}

	// The end: restores, check, space.
	r, closeRepo := simOpen(t, dir, "check")
	defer closeRepo()
	kept, err := List(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d snapshots remain, from %s to %s", len(kept), kept[0].Time.Format(time.DateTime), kept[len(kept)-1].Time.Format(time.DateTime))
	for _, s := range kept {
		want, ok := stateOf[s.ID]
		if !ok {
			t.Fatalf("snapshot %s of %s: not made by the simulation", s.ID.Short(), s.Time)
		}
		out := filepath.Join(base, "restore")
		if _, err := Restore(ctx, r, s, "", RestoreOptions{Target: out, OnError: func(p string, err error) { t.Errorf("restore %s: %s: %v", s.ID.Short(), p, err) }}); err != nil {
			t.Fatalf("restore %s: %v", s.ID.Short(), err)
		}
		simCompare(t, "snapshot of "+s.Time.Format(time.DateTime), filepath.Join(out, "src"), want)
		if err := os.RemoveAll(out); err != nil {
			t.Fatal(err)
		}
	}

	err = r.CheckPacks(ctx, func(f repo.Finding) { t.Errorf("check: %s: %s", f.Severity, f.Msg) })
	if err != nil {
		t.Fatal(err)
	}
	used, err := CheckTrees(ctx, r, kept, func(p TreeProblem) { t.Errorf("check: snapshot %s: %s: %v", p.Snapshot.ID.Short(), p.Path, p.Err) })
	if err != nil {
		t.Fatal(err)
	}
	packs, err := r.PackList()
	if err != nil {
		t.Fatal(err)
	}
	var indexedPackBytes int64
	for _, p := range packs {
		indexedPackBytes += p.Size
		bad, err := r.CheckPackData(ctx, p)
		if err != nil || len(bad) > 0 {
			t.Errorf("check: pack %s: %d damaged blobs, %v", p.ID.Short(), len(bad), err)
		}
	}
	var need, usedBlobs, unused int64
	err = r.Index().Blobs(func(loc index.Location) error {
		if !used.Has(loc.ID) {
			unused++
			return nil
		}
		usedBlobs++
		need += int64(loc.Length) + pack.EntrySize
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	need += pack.FooterSize
	var onDisk int64
	var files int
	err = filepath.WalkDir(filepath.Join(dir, "data"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		onDisk += fi.Size()
		files++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("data/: %d packs, %d bytes; the remaining snapshots need %d blobs, %d bytes with trailer entries and a footer (%.2f%% more on disk)",
		files, onDisk, usedBlobs, need, 100*float64(onDisk-need)/float64(need))
	if unused > 0 {
		t.Errorf("%d indexed blobs are not used by any snapshot after a prune with nothing unused allowed", unused)
	}
	if files != len(packs) || onDisk != indexedPackBytes {
		t.Errorf("data/ holds %d packs of %d bytes, the index lists %d of %d bytes", files, onDisk, len(packs), indexedPackBytes)
	}
	if onDisk < need || float64(onDisk) > 1.10*float64(need) {
		t.Errorf("data/ holds %d bytes; the remaining snapshots need %d: want between that and 10%% more", onDisk, need)
	}
}
