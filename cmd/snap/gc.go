package main

import (
	"math"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
)

// gcPercent is the GC target once the heap is large: backups make much
// short-lived garbage (one buffer per chunk), and a tighter target keeps peak
// memory near the live set (small bench corpus: 102 MiB at the default 100,
// 82 MiB at 50, no slower).
const gcPercent = 50

// gcFloor is the heap size below which the collector does not run. A short
// command with a small live set (a no-change backup keeps ~3 MiB live while it
// allocates ~25 MiB) otherwise collects every few MiB: at GOGC 50 that was a
// fifth of a no-change backup's wall time. Above the floor, gcPercent rules.
const gcFloor = 32 << 20

// tuneGC sets the collector to "no collection below gcFloor, then
// gcPercent". Go has no minimum heap goal, so the floor is a memory limit
// with the percentage target switched off; after every collection a
// finalizer looks at the live heap and, once gcPercent would ask for more
// than the floor, hands over to gcPercent for good. GOGC or GOMEMLIMIT in
// the environment override all of it.
func tuneGC(getenv func(string) string) {
	if getenv("GOGC") != "" {
		return
	}
	if getenv("GOMEMLIMIT") != "" {
		debug.SetGCPercent(gcPercent)
		return
	}
	debug.SetGCPercent(-1)
	debug.SetMemoryLimit(gcFloor)
	armGCHandover()
}

// armGCHandover registers a finalizer on a fresh object, which runs after the
// next collection finds it unreachable.
func armGCHandover() {
	sentinel := new([16]byte)
	runtime.SetFinalizer(sentinel, func(*[16]byte) {
		if !handOver() {
			armGCHandover()
		}
	})
}

// handOver switches from the floor to gcPercent when the live heap has grown
// so that gcPercent's goal lies above the floor, and reports whether it did.
func handOver() bool {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		debug.SetGCPercent(gcPercent) // metric gone in a future Go: plain GOGC
		debug.SetMemoryLimit(math.MaxInt64)
		return true
	}
	live := s[0].Value.Uint64()
	if live*(100+gcPercent)/100 < gcFloor {
		return false
	}
	debug.SetGCPercent(gcPercent)
	debug.SetMemoryLimit(math.MaxInt64)
	return true
}
