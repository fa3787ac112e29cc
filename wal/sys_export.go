package wal

import "os"

// The helpers below expose this package's file-system primitives to other
// logs built on the same guarantees (wal/shared), so that the platform
// rules (flock, fallocate, fdatasync, directory syncs) live in one place.

// LockDir takes an exclusive, non-blocking flock on the file at path,
// creating it if needed, and returns the open file that holds the lock; a
// second lock of the same path fails with ErrLocked. Closing the file
// releases the lock.
func LockDir(path string) (*os.File, error) { return lockDir(path) }

// Preallocate reserves size bytes for f, zero-filled, where the file
// system supports it (elsewhere it does nothing).
func Preallocate(f *os.File, size int64) error { return preallocate(f, size) }

// SyncData makes f's written data durable (fdatasync on Linux).
func SyncData(f *os.File) error { return syncData(f) }

// SyncDir makes renames and removals in dir durable.
func SyncDir(dir string) error { return syncDir(dir) }
