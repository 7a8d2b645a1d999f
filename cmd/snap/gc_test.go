package main

import (
	"fmt"
	"math"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"
)

// gcSettings reads the collector's percentage target and memory limit.
func gcSettings() (percent int64, limit int64) {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}, {Name: "/gc/gomemlimit:bytes"}}
	metrics.Read(s)
	return int64(s[0].Value.Uint64()), int64(s[1].Value.Uint64())
}

// resetGC sets the collector to Go's defaults for a test and restores the
// process's settings after it.
func resetGC(t *testing.T) {
	oldPercent := debug.SetGCPercent(100)
	oldLimit := debug.SetMemoryLimit(math.MaxInt64)
	t.Cleanup(func() {
		debug.SetGCPercent(oldPercent)
		debug.SetMemoryLimit(oldLimit)
	})
}

// TestTuneGC: below the floor the collector runs only at the memory limit;
// once the live heap needs more than the floor, gcPercent takes over and the
// limit goes; GOGC or GOMEMLIMIT in the environment leave the choice to Go.
func TestTuneGC(t *testing.T) {
	resetGC(t)

	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	tuneGC(env(map[string]string{"GOGC": "80"}))
	if p, l := gcSettings(); p != 100 || l != math.MaxInt64 {
		t.Fatalf("with GOGC set: percent %d, limit %d; want both left alone", p, l)
	}
	tuneGC(env(map[string]string{"GOMEMLIMIT": "1GiB"}))
	if p, l := gcSettings(); p != gcPercent || l != math.MaxInt64 {
		t.Fatalf("with GOMEMLIMIT set: percent %d, limit %d; want %d and no limit from snap", p, l, gcPercent)
	}

	debug.SetGCPercent(100)
	tuneGC(env(nil))
	if p, l := gcSettings(); p != -1 || l != gcFloor {
		t.Fatalf("after tuneGC: percent %d, memory limit %d; want off (-1) and the floor %d", p, l, gcFloor)
	}
	// A small live heap keeps the floor through collections.
	runtime.GC()
	runtime.GC()
	time.Sleep(50 * time.Millisecond) // the finalizer runs on its own goroutine
	if _, l := gcSettings(); l != gcFloor {
		t.Fatalf("after collecting a small heap: memory limit %d, want the floor %d kept", l, gcFloor)
	}
	// A live heap of the floor's size hands over to gcPercent.
	live := make([][]byte, 0, 48)
	for range 48 {
		live = append(live, make([]byte, 1<<20))
	}
	waitHandOver(t, fmt.Sprintf("with %d MiB live", len(live)))
	runtime.KeepAlive(live)
}

// waitHandOver collects until the floor has handed over to gcPercent, or
// fails after 5 seconds (the finalizer runs on a goroutine of its own).
func waitHandOver(t *testing.T, what string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
		p, l := gcSettings()
		if p == gcPercent && l == math.MaxInt64 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: percent %d, limit %d; want %d and no limit", what, p, l, gcPercent)
		}
	}
}

// growStack uses about n KiB of stack, then waits for release.
func growStack(n int, release <-chan struct{}, ready chan<- struct{}) byte {
	var pad [1024]byte
	if n > 0 {
		pad[0] = growStack(n-1, release, ready)
		return pad[0] + pad[1023]
	}
	ready <- struct{}{}
	<-release
	return pad[0]
}

// TestTuneGCHandsOverForStacks: memory outside the heap (here goroutine
// stacks) counts against the limit; when it leaves too little room below the
// floor, the floor gives way rather than collect back to back.
func TestTuneGCHandsOverForStacks(t *testing.T) {
	resetGC(t)
	tuneGC(func(string) string { return "" })
	release, ready := make(chan struct{}), make(chan struct{})
	const goroutines = 400 // 64 KiB of stack each: 25 MiB
	for range goroutines {
		go growStack(60, release, ready)
	}
	for range goroutines {
		<-ready
	}
	defer close(release)
	waitHandOver(t, fmt.Sprintf("with %d goroutines of 64 KiB stacks", goroutines))
}
