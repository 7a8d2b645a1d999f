package main

import (
	"os"
	"syscall"
	"time"
	"unsafe"
)

// atSymlinkNofollow is AT_SYMLINK_NOFOLLOW from <fcntl.h>; the syscall
// package does not export it for utimensat.
const atSymlinkNofollow = 0x100

// lchtimes sets the access and modification time of path without following
// a symlink. The standard library only has the following variant, and a
// symlink's own mtime is part of a deterministic tree.
func lchtimes(path string, t time.Time) error {
	p, err := syscall.BytePtrFromString(path)
	if err != nil {
		return err
	}
	ts := [2]syscall.Timespec{syscall.NsecToTimespec(t.UnixNano()), syscall.NsecToTimespec(t.UnixNano())}
	atFDCWD := -100
	_, _, errno := syscall.Syscall6(syscall.SYS_UTIMENSAT, uintptr(atFDCWD),
		uintptr(unsafe.Pointer(p)), uintptr(unsafe.Pointer(&ts[0])), atSymlinkNofollow, 0, 0)
	if errno != 0 {
		return &os.PathError{Op: "lchtimes", Path: path, Err: errno}
	}
	return nil
}
