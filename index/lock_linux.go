package index

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Bytes of index.db, far past its end, that processes lock with OFD record
// locks (fcntl F_OFD_SETLK) to take turns. Record locks and flock locks are
// independent on Linux, so these only signal intent; bbolt's flock still
// guards the data.
const (
	intentByte  = 1 << 62        // write-locked by a process about to commit
	waitingByte = intentByte + 1 // read-locked by readers waiting for a commit to end
)

// lockFile takes the flock that bbolt is about to ask for on f, waiting
// until deadline, and makes the wait fair.
//
// bbolt alone polls flock with LOCK_NB every 50 ms. Readers that open and
// close the file in a loop hold a shared lock nearly all the time, so a
// committing writer could starve for minutes (measured: 4 such readers kept
// a commit waiting 20 s). So a writer first locks the intent byte, and a
// reader that finds it locked waits before taking its shared lock: the
// running transactions drain and the writer gets in. In turn a writer lets
// the readers that waited through the previous commit in before announcing
// the next one, so back-to-back commits cannot starve readers either. Both
// poll with short pauses, so a commit does not cost a whole 50 ms interval.
// A process that ignores these bytes stays correct; it is merely not fair,
// and so is this one on a file system without record locks.
//
// The locks belong to f's open file description and vanish when bbolt
// closes f.
func lockFile(f *os.File, exclusive bool, deadline time.Time) error {
	fd := f.Fd()
	if exclusive {
		err := retry(deadline, func() (bool, error) { return isFree(fd, waitingByte, unix.F_WRLCK) })
		if err == nil {
			err = retry(deadline, func() (bool, error) {
				err := setLock(fd, intentByte, unix.F_WRLCK)
				return err == nil, ignoreBusy(err)
			})
		}
		if errors.Is(err, errTimeout) {
			return fmt.Errorf("announce commit: %w", err)
		}
		// Any other error means the file system has no record locks (some
		// FUSE file systems): go on without fairness.
		return flockWait(fd, syscall.LOCK_EX, deadline)
	}
	free, err := isFree(fd, intentByte, unix.F_RDLCK)
	if err == nil && !free && setLock(fd, waitingByte, unix.F_RDLCK) == nil {
		// Hold waitingByte until the shared lock is ours, or the writer
		// could announce its next commit first.
		defer setLock(fd, waitingByte, unix.F_UNLCK)
		err := retry(deadline, func() (bool, error) { return isFree(fd, intentByte, unix.F_RDLCK) })
		if errors.Is(err, errTimeout) {
			return fmt.Errorf("wait for a commit to finish: %w", err)
		}
	}
	return flockWait(fd, syscall.LOCK_SH, deadline)
}

func flockWait(fd uintptr, how int, deadline time.Time) error {
	return retry(deadline, func() (bool, error) {
		err := syscall.Flock(int(fd), how|syscall.LOCK_NB)
		return err == nil, ignoreBusy(err)
	})
}

func setLock(fd uintptr, off int64, typ int16) error {
	lk := unix.Flock_t{Type: typ, Whence: 0, Start: off, Len: 1}
	return unix.FcntlFlock(fd, unix.F_OFD_SETLK, &lk)
}

// isFree reports whether a lock of type typ on the byte at off could be
// taken now.
func isFree(fd uintptr, off int64, typ int16) (bool, error) {
	lk := unix.Flock_t{Type: typ, Whence: 0, Start: off, Len: 1}
	if err := unix.FcntlFlock(fd, unix.F_OFD_GETLK, &lk); err != nil {
		return false, ignoreBusy(err)
	}
	return lk.Type == unix.F_UNLCK, nil
}

// ignoreBusy turns the errors that mean "try again" into nil.
func ignoreBusy(err error) error {
	if errors.Is(err, syscall.EWOULDBLOCK) || errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EINTR) {
		return nil
	}
	return err
}
