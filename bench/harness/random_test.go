package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestWriteRandom checks that the random file has its size, depends on the
// seed only, and does not compress (no two of its 4 KiB blocks are equal).
func TestWriteRandom(t *testing.T) {
	read := func(seed uint64) []byte {
		dir := filepath.Join(t.TempDir(), "random")
		if err := writeRandom(dir, 2, seed); err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(filepath.Join(dir, "disk.img"))
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	a, b, c := read(1), read(1), read(2)
	if len(a) != 2<<20 || !bytes.Equal(a, b) || bytes.Equal(a, c) {
		t.Fatalf("sizes %d %d %d; same seed equal: %v; other seed equal: %v", len(a), len(b), len(c), bytes.Equal(a, b), bytes.Equal(a, c))
	}
	seen := map[string]bool{}
	for off := 0; off < len(a); off += 4096 {
		k := string(a[off : off+4096])
		if seen[k] {
			t.Fatalf("block at %d repeats", off)
		}
		seen[k] = true
	}
}

// TestRandomNote checks the throughput line under the table: snap's median
// wall time against the micro-benchmark, and nothing without either.
func TestRandomNote(t *testing.T) {
	var rs []*Result
	for _, wall := range []float64{1.0, 2.0, 4.0} { // median 2 s
		rs = append(rs, &Result{Scenario: "random", Tool: "snap", Status: "ok", Wall: wall})
	}
	rs = append(rs, &Result{Scenario: "random", Tool: "restic", Status: "ok", Wall: 9})
	note := randomNote(rs, 1000<<20, 1000)
	// 1000 MiB = 1048.6 MB in 2 s: 524 MB/s, 52 % of 1000 MB/s.
	if !strings.Contains(note, "1000 MiB random file at 524 MB/s, 52 %") || !strings.Contains(note, "1000 MB/s") {
		t.Errorf("note: %s", note)
	}
	if randomNote(rs, 1000<<20, 0) != "" || randomNote(rs[3:], 1000<<20, 1000) != "" {
		t.Error("a note without the benchmark or without a snap run")
	}
	var b bytes.Buffer
	writeTable(&b, reportInfo{size: "tiny", reps: 3, tools: []string{"snap", "restic"}, randomNote: note}, rs)
	if out := b.String(); !strings.Contains(out, "| initial backup, incompressible | restic | 1/1 | 9.000 |") || !strings.Contains(out, note) {
		t.Errorf("table lacks the random rows or note:\n%s", out)
	}
}
