package index

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// dropPages applies MADV_DONTNEED to size bytes at addr, a page-aligned
// range of a shared file mapping. The address stays a uintptr: it is never
// dereferenced by Go code, only handed to the kernel.
func dropPages(addr, size uintptr) error {
	if _, _, errno := unix.Syscall(unix.SYS_MADVISE, addr, size, unix.MADV_DONTNEED); errno != 0 {
		return fmt.Errorf("madvise index map: %w", errno)
	}
	return nil
}
