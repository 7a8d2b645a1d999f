//go:build !linux

package local

import "os"

// evict does nothing where posix_fadvise is not available.
func evict(f *os.File) {}
