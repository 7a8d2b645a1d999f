package index

import (
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"snap/chunk"
	"snap/repo/pack"
)

// benchPackSize is the number of blobs per pack, about a 16 MiB pack of small chunks.
const benchPackSize = 2_000

// benchBlobs is the index size for the benchmarks: a million, or
// SNAP_BENCH_BLOBS (docs/PERFORMANCE.md uses 10,000,000).
var benchBlobs = func() int {
	if n, err := strconv.Atoi(os.Getenv("SNAP_BENCH_BLOBS")); err == nil && n > 0 {
		return n
	}
	return 1_000_000
}()

var bench struct {
	once sync.Once
	dir  string
	path string
	hits []chunk.ID
	err  error
}

// benchIndex builds, once per test binary, an index of one million blobs in
// 500 packs, committed 100 packs per transaction as a rebuild does.
func benchIndex(b *testing.B) (string, []chunk.ID) {
	bench.once.Do(func() {
		start := time.Now()
		bench.dir, bench.err = os.MkdirTemp("", "snap-index-bench-")
		if bench.err != nil {
			return
		}
		bench.path = filepath.Join(bench.dir, "index.db")
		ix, err := Open(bench.path, testRepo)
		if err != nil {
			bench.err = err
			return
		}
		defer ix.Close()
		r := rand.New(rand.NewSource(99))
		for done := 0; done < benchBlobs; {
			var infos []PackInfo
			var lists [][]pack.Blob
			for i := 0; i < 100 && done < benchBlobs; i++ {
				id, size, blobs := makePack(r, benchPackSize)
				infos = append(infos, PackInfo{id, size, len(blobs)})
				lists = append(lists, blobs)
				bench.hits = append(bench.hits, blobs[0].ID, blobs[999].ID)
				done += len(blobs)
			}
			if bench.err = ix.AddPacks(infos, lists); bench.err != nil {
				return
			}
		}
		fi, _ := os.Stat(bench.path)
		b.Logf("built an index of %d blobs (%d MiB) in %v", benchBlobs, fi.Size()>>20, time.Since(start))
	})
	if bench.err != nil {
		b.Fatal(bench.err)
	}
	return bench.path, bench.hits
}

func TestMain(m *testing.M) {
	code := m.Run()
	if bench.dir != "" {
		os.RemoveAll(bench.dir)
	}
	os.Exit(code)
}

// BenchmarkLookup looks up blobs in an index of one million: held as a
// backup does, and opening the file for each call as a reader does.
func BenchmarkLookup(b *testing.B) {
	path, hits := benchIndex(b)
	r := rand.New(rand.NewSource(1))
	misses := make([]chunk.ID, 1024)
	for i := range misses {
		misses[i] = randID(r)
	}
	for _, mode := range []string{"held", "open"} {
		ix, err := Open(path, testRepo)
		if err != nil {
			b.Fatal(err)
		}
		if mode == "held" {
			if err := ix.Hold(); err != nil {
				b.Fatal(err)
			}
		}
		for _, c := range []struct {
			name string
			ids  []chunk.ID
			want bool
		}{{"hit", hits, true}, {"miss", misses, false}} {
			b.Run(mode+"/"+c.name, func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					_, found, err := ix.Lookup(c.ids[i%len(c.ids)])
					if err != nil || found != c.want {
						b.Fatalf("found %v, %v", found, err)
					}
				}
			})
		}
		ix.Close()
	}
}

// BenchmarkLookupMany looks up 2,000 blobs per call, half of them hits.
func BenchmarkLookupMany(b *testing.B) {
	path, hits := benchIndex(b)
	ix, err := Open(path, testRepo)
	if err != nil {
		b.Fatal(err)
	}
	defer ix.Close()
	r := rand.New(rand.NewSource(2))
	ids := make([]chunk.ID, 2000)
	for i := range ids {
		if i%2 == 0 {
			ids[i] = hits[r.Intn(len(hits))]
		} else {
			ids[i] = randID(r)
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		err := ix.LookupMany(ids, func(int, Location, bool) error { return nil })
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(ids)), "ns/blob")
}

// BenchmarkAddPack commits one new pack to an index of a million blobs, in
// held mode as a backup does (close the view, commit, reopen): a pack of
// 2,000 small blobs, and a 16 MiB pack of 16 chunks of the default 1 MiB.
func BenchmarkAddPack(b *testing.B) {
	path, _ := benchIndex(b)
	ix, err := Open(path, testRepo)
	if err != nil {
		b.Fatal(err)
	}
	defer ix.Close()
	if err := ix.Hold(); err != nil {
		b.Fatal(err)
	}
	r := rand.New(rand.NewSource(time.Now().UnixNano()))
	for _, n := range []int{benchPackSize, 16} {
		b.Run(fmt.Sprintf("%dblobs", n), func(b *testing.B) {
			type p struct {
				id    chunk.ID
				size  int64
				blobs []pack.Blob
			}
			packs := make([]p, b.N)
			for i := range packs {
				packs[i].id, packs[i].size, packs[i].blobs = makePack(r, n)
			}
			written := writtenBytes()
			b.ResetTimer()
			for i := range packs {
				if err := ix.AddPack(packs[i].id, packs[i].size, packs[i].blobs); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			if written >= 0 {
				b.ReportMetric(float64(writtenBytes()-written)/float64(b.N), "written-B/op")
			}
		})
	}
}

// writtenBytes returns the bytes this process has passed to write calls so
// far, or -1 where /proc does not tell.
func writtenBytes() int64 {
	data, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "wchar: "); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err == nil {
				return n
			}
		}
	}
	return -1
}
