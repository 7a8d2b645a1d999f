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
// It also hands over when memory that holds no heap object (goroutine
// stacks, the runtime's own structures) leaves less than a quarter of the
// floor to allocate before the limit forces the next collection: the
// collector would otherwise run back to back.
func handOver() bool {
	s := []metrics.Sample{
		{Name: "/gc/heap/live:bytes"},
		{Name: "/memory/classes/total:bytes"},
		{Name: "/memory/classes/heap/released:bytes"},
		{Name: "/memory/classes/heap/free:bytes"},
		{Name: "/memory/classes/heap/objects:bytes"},
	}
	metrics.Read(s)
	var v [5]int64
	for i := range s {
		if s[i].Value.Kind() != metrics.KindUint64 {
			debug.SetGCPercent(gcPercent) // a metric gone in a future Go: plain GOGC
			debug.SetMemoryLimit(math.MaxInt64)
			return true
		}
		v[i] = int64(s[i].Value.Uint64())
	}
	live := v[0]
	// The limit counts all mapped memory not returned to the OS. Of it,
	// free spans are reused before the heap grows, and heap objects are the
	// live ones plus garbage not yet swept (which the sweep frees); the rest
	// holds no object.
	other := max(0, v[1]-v[2]-v[3]-v[4])
	if live*(100+gcPercent)/100 < gcFloor && live+other+gcFloor/4 <= gcFloor {
		return false
	}
	debug.SetGCPercent(gcPercent)
	debug.SetMemoryLimit(math.MaxInt64)
	return true
}
