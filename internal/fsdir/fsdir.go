// Package fsdir reads and writes a file tree through directory handles.
//
// Every operation names one entry of an open directory (openat, fstatat,
// mkdirat, … with AT_SYMLINK_NOFOLLOW), so paths of any length work, and a
// symlink planted in a tree being restored is never followed. The archiver
// and the restorer in package snapshot use it; start with Open.
package fsdir

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Dir is an open directory.
type Dir struct {
	fd   int
	path string // for messages only
}

// Open opens the directory at path (following symlinks in path itself).
func Open(path string) (*Dir, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	return &Dir{fd: fd, path: path}, nil
}

// Join returns the path of an entry, for messages.
func (d *Dir) Join(name string) string { return filepath.Join(d.path, name) }

// Close closes the handle.
func (d *Dir) Close() error { return unix.Close(d.fd) }

func (d *Dir) err(op, name string, err error) error {
	return &os.PathError{Op: op, Path: d.Join(name), Err: err}
}

// OpenDir opens the subdirectory name; a symlink is refused.
func (d *Dir) OpenDir(name string) (*Dir, error) {
	fd, err := retryEINTR(func() (int, error) {
		return unix.Openat(d.fd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	})
	if err != nil {
		return nil, d.err("open", name, err)
	}
	return &Dir{fd: fd, path: d.Join(name)}, nil
}

// Names returns the entries of the directory, sorted bytewise.
func (d *Dir) Names() ([]string, error) {
	fd, err := unix.Openat(d.fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, d.err("open", ".", err)
	}
	f := os.NewFile(uintptr(fd), d.path)
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return nil, err
	}
	slices.Sort(names)
	return names, nil
}

// Lstat returns the metadata of name without following a symlink.
func (d *Dir) Lstat(name string) (unix.Stat_t, error) {
	var st unix.Stat_t
	err := unix.Fstatat(d.fd, name, &st, unix.AT_SYMLINK_NOFOLLOW)
	if err != nil {
		return st, d.err("lstat", name, err)
	}
	return st, nil
}

// OpenFile opens name for reading without following a symlink, and without
// moving its atime where the kernel allows that (owner or root).
func (d *Dir) OpenFile(name string) (*os.File, error) {
	fd, err := retryEINTR(func() (int, error) {
		return unix.Openat(d.fd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NOATIME|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	})
	if errors.Is(err, unix.EPERM) {
		fd, err = retryEINTR(func() (int, error) {
			return unix.Openat(d.fd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
		})
	}
	if err != nil {
		return nil, d.err("open", name, err)
	}
	// O_NONBLOCK only keeps a fifo that replaced the file from blocking the open.
	if err := unix.SetNonblock(fd, false); err != nil {
		unix.Close(fd)
		return nil, d.err("open", name, err)
	}
	return os.NewFile(uintptr(fd), d.Join(name)), nil
}

// Readlink returns the target of the symlink name.
func (d *Dir) Readlink(name string) (string, error) {
	for size := 256; ; size *= 2 {
		buf := make([]byte, size)
		n, err := unix.Readlinkat(d.fd, name, buf)
		if err != nil {
			return "", d.err("readlink", name, err)
		}
		if n < size {
			return string(buf[:n]), nil
		}
	}
}

// procPath names an entry through /proc, for the xattr calls on kernels
// before Linux 6.13, which have no *at forms of them; the path stays short
// however deep the directory is.
func (d *Dir) procPath(name string) string {
	return "/proc/self/fd/" + strconv.Itoa(d.fd) + "/" + name
}

// Mkdir creates the subdirectory name.
func (d *Dir) Mkdir(name string, mode uint32) error {
	if err := unix.Mkdirat(d.fd, name, mode); err != nil {
		return d.err("mkdir", name, err)
	}
	return nil
}

// Create creates a new regular file for writing; it fails if name exists,
// so a symlink in its place is never followed.
func (d *Dir) Create(name string, mode uint32) (*os.File, error) {
	fd, err := retryEINTR(func() (int, error) {
		return unix.Openat(d.fd, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, mode)
	})
	if err != nil {
		return nil, d.err("create", name, err)
	}
	return os.NewFile(uintptr(fd), d.Join(name)), nil
}

// Symlink creates the symlink name pointing at target.
func (d *Dir) Symlink(target, name string) error {
	if err := unix.Symlinkat(target, d.fd, name); err != nil {
		return d.err("symlink", name, err)
	}
	return nil
}

// Mknod creates a device node or fifo.
func (d *Dir) Mknod(name string, mode uint32, dev uint64) error {
	if err := unix.Mknodat(d.fd, name, mode, int(dev)); err != nil {
		return d.err("mknod", name, err)
	}
	return nil
}

// Link makes name a hard link to the file oldName in dir old.
func (d *Dir) Link(old *Dir, oldName, name string) error {
	if err := unix.Linkat(old.fd, oldName, d.fd, name, 0); err != nil {
		return d.err("link", name, err)
	}
	return nil
}

// Remove deletes name; a directory is removed with everything in it.
func (d *Dir) Remove(name string) error {
	err := unix.Unlinkat(d.fd, name, 0)
	if errors.Is(err, unix.EISDIR) {
		if err := d.removeContents(name); err != nil {
			return err
		}
		err = unix.Unlinkat(d.fd, name, unix.AT_REMOVEDIR)
	}
	if err != nil {
		return d.err("remove", name, err)
	}
	return nil
}

func (d *Dir) removeContents(name string) error {
	sub, err := d.OpenDir(name)
	if err != nil {
		return err
	}
	defer sub.Close()
	names, err := sub.Names()
	if err != nil {
		return err
	}
	for _, n := range names {
		if err := sub.Remove(n); err != nil {
			return err
		}
	}
	return nil
}

// Lchown sets the owner of name without following a symlink.
func (d *Dir) Lchown(name string, uid, gid uint32) error {
	if err := unix.Fchownat(d.fd, name, int(uid), int(gid), unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return d.err("chown", name, err)
	}
	return nil
}

// Chmod sets the mode bits (07777) of name, which must not be a symlink.
func (d *Dir) Chmod(name string, mode uint32) error {
	if err := unix.Fchmodat(d.fd, name, mode, 0); err != nil {
		return d.err("chmod", name, err)
	}
	return nil
}

// SetTimes sets atime and mtime (nanoseconds) without following a symlink.
func (d *Dir) SetTimes(name string, atime, mtime unix.Timespec) error {
	ts := []unix.Timespec{atime, mtime}
	if err := unix.UtimesNanoAt(d.fd, name, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return d.err("set times", name, err)
	}
	return nil
}

// SetFileTimes sets atime and mtime (nanoseconds) of an open file: futimens,
// which x/sys/unix does not offer (utimensat with a NULL path).
func SetFileTimes(f *os.File, atime, mtime unix.Timespec) error {
	ts := [2]unix.Timespec{atime, mtime}
	_, _, errno := unix.Syscall6(unix.SYS_UTIMENSAT, f.Fd(), 0, uintptr(unsafe.Pointer(&ts[0])), 0, 0, 0)
	if errno != 0 {
		return &os.PathError{Op: "set times", Path: f.Name(), Err: errno}
	}
	return nil
}

func retryEINTR(f func() (int, error)) (int, error) {
	for {
		fd, err := f()
		if !errors.Is(err, unix.EINTR) {
			return fd, err
		}
	}
}

// Holes returns the holes of an open file as (offset, length) pairs, found
// with SEEK_DATA/SEEK_HOLE. A file system without support reports none.
func Holes(f *os.File, size int64) ([][2]int64, error) {
	var holes [][2]int64
	fd := int(f.Fd())
	for off := int64(0); off < size; {
		data, err := unix.Seek(fd, off, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			data = size // only a hole up to the end
		} else if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EOPNOTSUPP) {
			return nil, nil
		} else if err != nil {
			return nil, fmt.Errorf("seek data in %s: %w", f.Name(), err)
		}
		data = min(data, size)
		if data > off {
			holes = append(holes, [2]int64{off, data - off})
		}
		if data >= size {
			break
		}
		hole, err := unix.Seek(fd, data, unix.SEEK_HOLE)
		if err != nil {
			return nil, fmt.Errorf("seek hole in %s: %w", f.Name(), err)
		}
		off = hole
	}
	if _, err := f.Seek(0, 0); err != nil {
		return nil, err
	}
	return holes, nil
}
