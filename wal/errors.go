package wal

import (
	"errors"
	"fmt"
)

var (
	// ErrLocked is returned by Open when another Storage (in this process
	// or another) has the directory open.
	ErrLocked = errors.New("wal: directory is locked by another storage")
	// ErrClosed is returned by every method called after Close.
	ErrClosed = errors.New("wal: storage is closed")
	// ErrCorrupt is matched (with errors.Is) by every *CorruptionError.
	ErrCorrupt = errors.New("wal: corrupt data")
)

// CorruptionError reports damaged or inconsistent data found on disk: a
// record whose checksum does not match, a payload that does not decode, a
// record that contradicts the log before it, a missing segment or snapshot.
// Open refuses to proceed past one rather than guess, because skipping a
// damaged record could silently lose an entry that was reported durable.
type CorruptionError struct {
	// File is the path of the damaged file (or of the directory when a
	// file is missing).
	File string
	// Offset is the byte offset in File of the damaged record.
	Offset int64
	// Reason says what is wrong.
	Reason string
}

func (e *CorruptionError) Error() string {
	return fmt.Sprintf("wal: corrupt data in %s at offset %d: %s", e.File, e.Offset, e.Reason)
}

// Is makes errors.Is(err, ErrCorrupt) true for every CorruptionError.
func (e *CorruptionError) Is(target error) bool { return target == ErrCorrupt }
