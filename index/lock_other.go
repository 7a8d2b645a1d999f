//go:build !linux

package index

import (
	"os"
	"time"
)

// lockFile leaves the locking to bbolt, which polls flock every 50 ms. Only
// the Linux version makes waiting writers take precedence over new readers.
func lockFile(f *os.File, exclusive bool, deadline time.Time) error { return nil }
