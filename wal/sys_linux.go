//go:build linux

package wal

import (
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"syscall"
)

// lockDir takes an exclusive flock on dir/LOCK. flock locks belong to the
// open file description, so a second Open of the same directory fails even
// inside one process; the kernel drops the lock when the process dies, so a
// crash never leaves a stale lock behind.
func lockDir(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("wal: opening lock file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s", ErrLocked, path)
		}
		return nil, fmt.Errorf("wal: locking %s: %w", path, err)
	}
	return f, nil
}

// preallocate reserves size bytes for f, zero-filled. Appends into
// reserved space do not grow the file, so a data sync has no file size to
// write back, and the blocks are more likely contiguous.
func preallocate(f *os.File, size int64) error {
	for {
		err := syscall.Fallocate(int(f.Fd()), 0, 0, size)
		if err == syscall.EINTR {
			continue
		}
		if err == syscall.EOPNOTSUPP || err == syscall.ENOSYS {
			return nil // the file system cannot; appends just grow the file
		}
		return err
	}
}

// syncData makes written data durable. fdatasync skips metadata such as
// the modification time, which recovery does not need; a size change (an
// append past the preallocated space) is still written.
func syncData(f *os.File) error {
	for {
		err := syscall.Fdatasync(int(f.Fd()))
		if err != syscall.EINTR {
			return err
		}
	}
}

// dirSyncs counts syncDir calls, for tests that check which paths sync the
// directory.
var dirSyncs atomic.Uint64

// syncDir makes renames and removals in dir durable.
func syncDir(dir string) error {
	dirSyncs.Add(1)
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
