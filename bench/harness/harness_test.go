package main

import (
	"bytes"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A report as GNU time 1.9 writes it for a failed command.
const timeV = `Command exited with non-zero status 3
	Command being timed: "restic backup /x"
	User time (seconds): 1.25
	System time (seconds): 0.50
	Percent of CPU this job got: 97%
	Elapsed (wall clock) time (h:mm:ss or m:ss): 1:02.50
	Average shared text size (kbytes): 0
	Maximum resident set size (kbytes): 204800
	File system inputs: 2048
	File system outputs: 4096
	Socket messages sent: 0
	Exit status: 3
`

func TestParseTimeV(t *testing.T) {
	var r Result
	exit, err := parseTimeV([]byte(timeV), &r)
	if err != nil {
		t.Fatal(err)
	}
	if exit != 3 || r.User != 1.25 || r.Sys != 0.5 || r.Elapsed != 62.5 || r.MaxRSS != 204800 ||
		r.FSIn != 2048 || r.FSOut != 4096 {
		t.Errorf("exit %d, parsed %+v", exit, r)
	}
	if _, err := parseTimeV([]byte("garbage\n"), &r); err == nil {
		t.Error("incomplete report accepted")
	}
	if v, _ := parseClock("1:00:01"); v != 3601 {
		t.Errorf("parseClock(1:00:01) = %v", v)
	}
}

func TestMeasureRealCommand(t *testing.T) {
	if _, err := os.Stat(timeBin); err != nil {
		t.Skip("GNU time not installed")
	}
	base := filepath.Join(t.TempDir(), "x")
	r, err := measure(command{argv: []string{"sh", "-c", "echo hi; exit 2"}}, base)
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != "fail(2)" || r.Wall <= 0 || lastLine(base+".out") != "hi" {
		t.Errorf("got %+v", r)
	}
}

func TestMedian(t *testing.T) {
	if m := median([]float64{3, 1, 2}); m != 2 {
		t.Errorf("median odd = %v", m)
	}
	if m := median([]float64{4, 1, 2, 3}); m != 2.5 {
		t.Errorf("median even = %v", m)
	}
	if !math.IsNaN(median(nil)) {
		t.Error("median of nothing is not NaN")
	}
}

func TestTable(t *testing.T) {
	var rs []*Result
	for rep := 1; rep <= 3; rep++ {
		rs = append(rs,
			&Result{Rep: rep, Scenario: "initial", Tool: "snap", Status: "ok", Wall: float64(rep), Size: 100 << 20, Delta: 100 << 20},
			&Result{Rep: rep, Scenario: "initial", Tool: "restic", Status: "ok", Wall: 4, Size: 200 << 20, Delta: 200 << 20},
			&Result{Rep: rep, Scenario: "prune", Tool: "snap", Status: "n/a", Size: -1},
			&Result{Rep: rep, Scenario: "prune", Tool: "restic", Status: "ok", Wall: 1, Size: 50 << 20, Delta: -10 << 20},
			&Result{Rep: rep, Scenario: "round", Tool: "restic", Status: "ok", Wall: 9},
		)
	}
	rs = append(rs, &Result{Rep: 4, Scenario: "initial", Tool: "restic", Status: "fail(1)", Wall: 99, Note: "failed"})
	var b bytes.Buffer
	writeTable(&b, reportInfo{size: "tiny", reps: 3, tools: []string{"snap", "restic"}}, rs)
	out := b.String()
	for _, want := range []string{
		"| initial backup | snap | 3/3 | 2.000 |",                  // median of 1, 2, 3
		"| initial backup | restic | 3/4 | 4.000 |",                // the failed run is left out
		"| 200.0 | 200.0 | 0.50 | 0.50 |",                          // size, added, ratios
		"| forget --keep-last 3 + prune | snap | n/a |",            // unknown command
		"| forget --keep-last 3 + prune | restic | 3/3 | 1.000 | ", // ratio "—" as snap has none
		"initial, restic: failed",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "| round") {
		t.Error("preparation rounds leaked into the table")
	}
	// Every table row has the same number of cells, or Markdown breaks it.
	main, _, _ := strings.Cut(out, "\nTargets of the benchmark issue")
	for _, l := range strings.Split(main, "\n") {
		if strings.HasPrefix(l, "| ") && strings.Count(strings.ReplaceAll(l, `\|`, ""), "|") != 15 {
			t.Errorf("row with wrong cell count: %s", l)
		}
	}
	var tsv bytes.Buffer
	writeTSV(&tsv, rs)
	if n := strings.Count(tsv.String(), "\n"); n != len(rs)+1 {
		t.Errorf("TSV has %d lines for %d results", n, len(rs))
	}
}

func TestTargets(t *testing.T) {
	var rs []*Result
	add := func(scen, tool string, wall float64, size, delta int64, rssKiB int64) {
		for rep := 1; rep <= 3; rep++ {
			rs = append(rs, &Result{Rep: rep, Scenario: scen, Tool: tool, Status: "ok", Wall: wall, Size: size, Delta: delta, MaxRSS: rssKiB})
		}
	}
	add("initial", "snap", 1, 100<<20, 100<<20, 60<<10)
	add("initial", "restic", 2, 100<<20, 100<<20, 100<<10) // 0.50: met; RSS 0.60: missed
	add("initial", "borg", 2, 100<<20, 100<<20, 80<<10)    // 0.50: missed
	add("nochange", "snap", 0.15, 0, 0, 1)
	add("nochange", "find", 0.1, -1, 0, 1) // exactly 1.5: met
	add("random", "snap", 1, 512<<20, 512<<20, 1)
	var b bytes.Buffer
	writeTable(&b, reportInfo{size: "small", reps: 3, tools: []string{"snap", "restic", "borg"},
		randomBytes: 512 << 20, chunkHashMBps: 1000}, rs)
	out := b.String()
	for _, want := range []string{
		"| initial backup: wall ≤ 0.6 × restic | 0.50 | met |",
		"| initial backup: wall ≤ 0.4 × borg | 0.50 | **missed** |",
		"| no-change backup: wall ≤ 1.5 × find | 1.50 | met |",
		"| no-change backup: wall ≤ 0.5 × restic | — | not measured |",
		"| peak RSS of the initial backup ≤ 0.5 × restic | 0.60 | **missed** (set for the large corpus) |",
		// 512 MiB in 1 s is 537 MB/s: 0.54 of 1000.
		"| initial backup, incompressible: ≥ 60 % of chunking + SHA-256 on all cores | 0.54 | **missed** |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("targets lack %q:\n%s", want, out)
		}
	}
}

func TestVerifyRestore(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(src, "d"), 0o755))
	must(os.WriteFile(filepath.Join(src, "d", "a"), []byte("hello"), 0o644))
	must(os.Link(filepath.Join(src, "d", "a"), filepath.Join(src, "b")))
	must(os.Symlink("d/a", filepath.Join(src, "s")))

	dst := filepath.Join(t.TempDir(), "dst")
	must(exec.Command("cp", "-a", src, dst).Run())
	if probs, err := verifyRestore(src, dst, true); err != nil || probs != "" {
		t.Fatalf("cp -a copy: %q, %v", probs, err)
	}

	// Expand the hard link and change a byte without changing size or mtime.
	must(os.Remove(filepath.Join(dst, "b")))
	must(exec.Command("cp", "-p", filepath.Join(dst, "d", "a"), filepath.Join(dst, "b")).Run())
	must(exec.Command("sh", "-c", `printf J | dd of="$1" conv=notrunc status=none && touch -r "$2" "$1"`,
		"sh", filepath.Join(dst, "d", "a"), filepath.Join(src, "d", "a")).Run())
	probs, err := verifyRestore(src, dst, true)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(probs, "hard links kept 0/1") || !strings.Contains(probs, "1 content") {
		t.Errorf("got %q", probs)
	}
	if probs, _ := verifyRestore(src, dst, false); strings.Contains(probs, "content") {
		t.Errorf("meta check compared contents: %q", probs)
	}
}

// TestSpaceNeeded: the large run with 2 repetitions ran out of disk with
// 61,000 MiB free, in the rsync edit rounds before prune; the estimate must
// say so before starting.
func TestSpaceNeeded(t *testing.T) {
	with := spaceNeeded("large", 2, 4, true, false, 10, 1024)
	without := spaceNeeded("large", 2, 3, false, false, 10, 1024)
	if with <= 61_000 {
		t.Errorf("large, 2 reps, 4 tools: estimated %d MiB, but 61,000 were not enough", with)
	}
	if without >= with {
		t.Errorf("without rsync %d MiB, with %d: rsync's rounds not counted", without, with)
	}
	if small := spaceNeeded("small", 3, 4, true, false, 10, 512); small > 20_000 {
		t.Errorf("small, 3 reps: %d MiB, more than the ~15 GB such runs take", small)
	}
}

// TestWaitQuiet: the harness waits while the load is high, stops as soon as
// it falls, and gives up at its limit.
func TestWaitQuiet(t *testing.T) {
	seq := func(v ...float64) func() float64 {
		return func() float64 {
			x := v[0]
			if len(v) > 1 {
				v = v[1:]
			}
			return x
		}
	}
	var slept time.Duration
	sleep := func(d time.Duration) { slept += d }
	if w, l := waitQuiet(5*time.Minute, seq(1.5, 1.2, 0.3), sleep); w != 20*time.Second || l != 0.3 || slept != w {
		t.Errorf("falling load: waited %v (slept %v), last load %v; want 20s, 0.3", w, slept, l)
	}
	slept = 0
	if w, l := waitQuiet(time.Minute, seq(2), sleep); w != time.Minute || l != 2 {
		t.Errorf("busy machine: waited %v, last load %v; want the 1m limit", w, l)
	}
	slept = 0
	if w, _ := waitQuiet(time.Minute, seq(0.1), sleep); w != 0 || slept != 0 {
		t.Errorf("idle machine: waited %v", w)
	}
}
