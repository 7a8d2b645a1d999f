//go:build !linux

package index

// dropPages does nothing: other systems keep their mappings.
func dropPages(addr, size uintptr) error { return nil }
