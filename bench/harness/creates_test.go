package main

import (
	"errors"
	"os"
	"testing"
	"time"
)

func TestProbeCreates(t *testing.T) {
	dir := t.TempDir()
	per, err := probeCreates(dir, 50)
	if err != nil || per <= 0 {
		t.Fatalf("probeCreates = %v, %v", per, err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("%d entries in the work directory, want one probe directory", len(entries))
	}
	files, _ := os.ReadDir(dir + "/" + entries[0].Name())
	if len(files) != 50 {
		t.Fatalf("the probe directory holds %d files, want 50 (kept, not deleted)", len(files))
	}
}

// TestWaitForCreates runs the waiting logic on made-up measurements.
func TestWaitForCreates(t *testing.T) {
	fast, slow := 20*time.Microsecond, 600*time.Microsecond
	cases := []struct {
		name       string
		measured   []time.Duration // in turn; the last one repeats
		wantPer    time.Duration
		wantWaited time.Duration
	}{
		{"fast at once", []time.Duration{fast}, fast, 0},
		{"slow, then fast", []time.Duration{slow, slow, fast}, fast, 2 * probeEvery},
		{"slow throughout", []time.Duration{slow}, slow, createWait},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			calls := 0
			probe := func(string, int) (time.Duration, error) {
				d := c.measured[min(calls, len(c.measured)-1)]
				calls++
				return d, nil
			}
			var slept time.Duration
			per, waited, err := waitForCreates("dir", "test", probe, func(d time.Duration) { slept += d })
			if err != nil || per != c.wantPer || waited != c.wantWaited || slept != waited {
				t.Fatalf("waitForCreates = %v, waited %v (slept %v), %v; want %v, waited %v", per, waited, slept, err, c.wantPer, c.wantWaited)
			}
		})
	}
	failing := func(string, int) (time.Duration, error) { return 0, errors.New("disk full") }
	if _, _, err := waitForCreates("dir", "test", failing, func(time.Duration) {}); err == nil {
		t.Fatal("a failing probe gave no error")
	}
}
