package main

import (
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// The work disk's ext4 runs without a journal, where a new inode must not
// reuse one freed in the last 60 to 360 seconds: after a mass delete anywhere
// on the file system (a test suite, another program) every file created scans
// past the recently freed inodes, 20–30× slower (BENCHMARKING.md, trap 1).
// The stamp of the bench's own cleanups (waitSettle) cannot see other
// programs' deletes, so the harness also measures file creation itself.
const (
	probeFiles = 500
	// slowCreate is the time per file above which the file system is taken
	// to be in that state: healthy creation here took 21 µs a file, 100–600 µs
	// in the minutes after a test suite had run.
	slowCreate = 60 * time.Microsecond
	createWait = 8 * time.Minute
	probeEvery = 30 * time.Second
)

// probeCreates creates n empty files in a new directory under dir and
// returns the time per file. The files stay: deleting them would itself slow
// the next creations for minutes; they go with the work directory.
func probeCreates(dir string, n int) (time.Duration, error) {
	d, err := os.MkdirTemp(dir, "create-probe-")
	if err != nil {
		return 0, err
	}
	start := time.Now()
	for i := 0; i < n; i++ {
		f, err := os.OpenFile(filepath.Join(d, fmt.Sprint(i)), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if err != nil {
			return 0, err
		}
		f.Close()
	}
	return time.Since(start) / time.Duration(n), nil
}

// waitForCreates measures file creation in dir and, while it is slow, waits
// and measures again, for at most createWait. probe and sleep are
// parameters for the test. It returns the last measurement and how long it
// waited.
func waitForCreates(dir, what string, probe func(string, int) (time.Duration, error), sleep func(time.Duration)) (time.Duration, time.Duration, error) {
	var waited time.Duration
	for {
		per, err := probe(dir, probeFiles)
		if err != nil {
			return 0, waited, fmt.Errorf("probe file creation in %s: %w", dir, err)
		}
		if per <= slowCreate {
			return per, waited, nil
		}
		if waited >= createWait {
			logf("%s: file creation still takes %s per file after waiting %s; going on (the restores will be slow)", what, per.Round(time.Microsecond), waited)
			return per, waited, nil
		}
		logf("%s: file creation takes %s per file (something deleted many files recently); waiting %s", what, per.Round(time.Microsecond), probeEvery)
		sleep(probeEvery)
		waited += probeEvery
	}
}
