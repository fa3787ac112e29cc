package shared

import (
	"errors"
	"fmt"
)

var (
	// ErrClosed is returned by every method called after Close.
	ErrClosed = errors.New("shared wal: closed")
	// ErrCorrupt is matched (with errors.Is) by every *CorruptionError.
	ErrCorrupt = errors.New("shared wal: corrupt data")
	// ErrNoGroup is returned for an update or a view of a group that does
	// not exist (never created, or removed).
	ErrNoGroup = errors.New("shared wal: no such group")
	// ErrGroupExists is returned by CreateGroup for a live group.
	ErrGroupExists = errors.New("shared wal: group already exists")
)

// CorruptionError reports damaged or inconsistent data on disk. Open
// refuses to go past one rather than guess, since skipping a damaged record
// could silently lose an entry that was reported durable.
type CorruptionError struct {
	// File is the damaged file (or the directory when a file is missing).
	File string
	// Offset is the byte offset of the damaged record in File.
	Offset int64
	// Reason says what is wrong.
	Reason string
}

func (e *CorruptionError) Error() string {
	return fmt.Sprintf("shared wal: corrupt data in %s at offset %d: %s", e.File, e.Offset, e.Reason)
}

// Is makes errors.Is(err, ErrCorrupt) true for every CorruptionError.
func (e *CorruptionError) Is(target error) bool { return target == ErrCorrupt }
