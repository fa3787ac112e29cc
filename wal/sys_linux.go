//go:build linux

package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"syscall"
	"unsafe"
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

// FIEMAP (linux/fiemap.h): the ioctl, its flags and record sizes.
const (
	fsIocFiemap       = 0xC020660B
	fiemapHeaderSize  = 32
	fiemapExtentSize  = 56
	fiemapExtentLast  = 0x1
	fiemapUnwritten   = 0x800
	fiemapBatchExtent = 32
)

// writtenPrefix returns how far from its start f's blocks are allocated and
// written: the offset of its first hole or unwritten (fallocated) extent,
// or its size if it has none. File systems without FIEMAP report 0.
func writtenPrefix(f *os.File) (int64, error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	size := fi.Size()
	buf := make([]byte, fiemapHeaderSize+fiemapBatchExtent*fiemapExtentSize)
	var pos int64
	for pos < size {
		clear(buf)
		binary.NativeEndian.PutUint64(buf[0:], uint64(pos))
		binary.NativeEndian.PutUint64(buf[8:], uint64(size-pos))
		binary.NativeEndian.PutUint32(buf[24:], fiemapBatchExtent)
		_, _, errno := syscall.Syscall(syscall.SYS_IOCTL, f.Fd(), fsIocFiemap, uintptr(unsafe.Pointer(&buf[0])))
		if errno != 0 {
			return 0, errno
		}
		n := int(binary.NativeEndian.Uint32(buf[20:]))
		if n == 0 {
			return pos, nil // a hole up to the end
		}
		for k := 0; k < n; k++ {
			e := buf[fiemapHeaderSize+k*fiemapExtentSize:]
			logical := int64(binary.NativeEndian.Uint64(e[0:]))
			length := int64(binary.NativeEndian.Uint64(e[16:]))
			flags := binary.NativeEndian.Uint32(e[40:])
			if logical > pos || flags&fiemapUnwritten != 0 {
				return pos, nil
			}
			pos = logical + length
			if flags&fiemapExtentLast != 0 {
				return min(pos, size), nil
			}
		}
	}
	return size, nil
}
