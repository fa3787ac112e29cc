package raft

import (
	"errors"
	"fmt"
	"sync"

	"github.com/raftkit/raft/internal/logbounds"
	pb "github.com/raftkit/raft/raftpb"
)

// The sentinel errors of Storage. Their texts are part of the API.
var (
	// ErrCompacted reports that a requested index lies at or below the log's
	// compaction point, so the entry now exists only inside a snapshot.
	ErrCompacted = errors.New("requested index is unavailable due to compaction")
	// ErrSnapOutOfDate reports an attempt to create or apply a snapshot that
	// is not newer than the one the storage already has.
	ErrSnapOutOfDate = errors.New("requested index is older than the existing snapshot")
	// ErrUnavailable reports that a requested entry is past the end of the
	// stored log (or otherwise missing from it).
	ErrUnavailable = errors.New("requested entry at index is unavailable")
	// ErrSnapshotTemporarilyUnavailable is what Storage.Snapshot returns
	// while a snapshot is still being prepared; raft retries later instead of
	// failing.
	ErrSnapshotTemporarilyUnavailable = errors.New("snapshot is temporarily unavailable")
)

// Storage is the application's durable log, read by raft. Raft never writes
// through this interface: the application persists what Ready hands it and
// then makes it visible here.
//
// The stored log is a contiguous run of entries [FirstIndex(), LastIndex()]
// preceded by a compaction point at FirstIndex()-1, whose term stays known
// (raft needs it to match appends against the log) even though the entry
// itself is gone into the latest snapshot.
//
// An error other than the documented sentinels leaves the raft instance
// unable to continue; recovering from it is up to the application.
type Storage interface {
	// InitialState returns the persisted HardState and the ConfState of the
	// latest snapshot.
	InitialState() (pb.HardState, pb.ConfState, error)

	// Entries returns the consecutive entries with indexes in [lo, hi). If
	// maxSize is not enough for all of them, it returns the longest prefix
	// whose encoded size fits, but always at least one entry.
	//
	// The caller owns the returned slice and may append to it; the entries in
	// it are shared and must be mutated by nobody, neither Storage nor the
	// caller (raft may pass them on to the application in a Ready). So an
	// implementation must not let the caller's appends reach its own memory:
	// return a fresh slice, or one whose capacity equals its length.
	//
	// Returns ErrCompacted if lo is at or below the compaction point, and
	// ErrUnavailable if some entry of [lo, hi) is missing.
	Entries(lo, hi, maxSize uint64) ([]pb.Entry, error)

	// Term returns the term of entry i, for i in [FirstIndex()-1,
	// LastIndex()]. Below that range it returns ErrCompacted, above it
	// ErrUnavailable.
	Term(i uint64) (uint64, error)
	// LastIndex returns the index of the last entry in the log (the
	// compaction point if the log holds no entries).
	LastIndex() (uint64, error)
	// FirstIndex returns the index of the first entry that Entries may
	// return, that is, one past the compaction point. If no entry is stored,
	// FirstIndex is LastIndex()+1.
	FirstIndex() (uint64, error)
	// Snapshot returns the most recent snapshot. When a snapshot is being
	// prepared and is not ready yet, it returns
	// ErrSnapshotTemporarilyUnavailable; raft then tries again later.
	Snapshot() (pb.Snapshot, error)
}

// StorageBounds is an optional interface for a Storage: raft reads the
// first index on most log lookups (the application may compact at any
// moment), and a Storage that implements StorageBounds answers without
// taking its lock. MemoryStorage and wal.Storage implement it.
type StorageBounds interface {
	// LogBounds returns what FirstIndex, LastIndex and Term(LastIndex())
	// would return, all three as of one moment. It must not block on
	// writers for long and cannot fail.
	LogBounds() (first, last, lastTerm uint64)
}

// MemoryStorage implements Storage in memory. Its methods may be called from
// several goroutines (raft reads it while the application appends); the
// embedded mutex guards all fields and is exported for compatibility.
//
// Numbered invariants:
//  1. log[0] is the compaction point: its Index and Term are those of the
//     last entry folded into a snapshot (0/0 when nothing was), and it carries
//     no payload.
//  2. log[k].Index == log[0].Index+k for every k.
//  3. Slots of log's array beyond len(log) are never handed out, and slots
//     that were handed out are never overwritten: truncation moves to a
//     fresh array, compaction does unless lent is false, and returned slices
//     have capacity == length.
//  4. log starts at the first slot of its array, and lent is true if Entries
//     has handed out any slot of that array.
type MemoryStorage struct {
	sync.Mutex

	log       []pb.Entry // see the invariants above; assign through setLog
	lent      bool       // see invariant 4
	snapshot  pb.Snapshot
	hardState pb.HardState

	// bounds mirrors firstKept(), lastKept() and the last entry's term, for
	// LogBounds. setLog publishes them while holding the lock, right after
	// every change of log; writers are serialized by the lock.
	bounds logbounds.Bounds
}

// NewMemoryStorage returns a MemoryStorage holding no entries and no snapshot.
func NewMemoryStorage() *MemoryStorage {
	ms := &MemoryStorage{}
	ms.setLog(make([]pb.Entry, 1))
	return ms
}

// setLog makes log the stored log and publishes its bounds. The caller
// holds the lock (or owns ms exclusively, as NewMemoryStorage does).
func (ms *MemoryStorage) setLog(log []pb.Entry) {
	if len(ms.log) == 0 || &log[0] != &ms.log[0] {
		ms.lent = false // a new array: nothing of it handed out yet
	}
	ms.log = log
	ms.bounds.Store(ms.firstKept(), ms.lastKept(), log[len(log)-1].Term)
}

// LogBounds returns the stored log's first and last index and the last
// entry's term as of one moment, without the lock (StorageBounds). It
// retries while a writer is publishing new bounds, which takes a few stores.
func (ms *MemoryStorage) LogBounds() (first, last, lastTerm uint64) { return ms.bounds.Load() }

// compactedIndex is the compaction point (invariant 1).
func (ms *MemoryStorage) compactedIndex() uint64 { return ms.log[0].Index }

func (ms *MemoryStorage) firstKept() uint64 { return ms.compactedIndex() + 1 }

func (ms *MemoryStorage) lastKept() uint64 {
	return ms.compactedIndex() + uint64(len(ms.log)-1)
}

// InitialState returns the stored HardState and the ConfState of the latest snapshot (Storage).
func (ms *MemoryStorage) InitialState() (pb.HardState, pb.ConfState, error) {
	ms.Lock()
	defer ms.Unlock()
	return ms.hardState, ms.snapshot.Metadata.ConfState, nil
}

// SetHardState records st; InitialState returns it from then on.
func (ms *MemoryStorage) SetHardState(st pb.HardState) error {
	ms.Lock()
	ms.hardState = st
	ms.Unlock()
	return nil
}

// Entries implements the Storage interface. Asking for entries past the
// last index is a bug in the caller and panics.
func (ms *MemoryStorage) Entries(lo, hi, maxSize uint64) ([]pb.Entry, error) {
	ms.Lock()
	defer ms.Unlock()
	base := ms.compactedIndex()
	if lo <= base {
		return nil, ErrCompacted
	}
	if last := ms.lastKept(); hi > last+1 || lo > hi {
		panic(fmt.Sprintf("MemoryStorage.Entries: range [%d, %d) is not within the log (first %d, last %d)",
			lo, hi, base+1, last))
	}
	if len(ms.log) == 1 {
		return nil, ErrUnavailable
	}
	out := prefixWithin(ms.log[lo-base:hi-base], entryEncodingSize(maxSize))
	ms.lent = ms.lent || len(out) != 0
	// Capacity == length: the caller may append, which then copies (invariant 3).
	return out[:len(out):len(out)], nil
}

// Term returns the term of entry i (Storage).
func (ms *MemoryStorage) Term(i uint64) (uint64, error) {
	ms.Lock()
	defer ms.Unlock()
	base := ms.compactedIndex()
	switch {
	case i < base:
		return 0, ErrCompacted
	case i > ms.lastKept():
		return 0, ErrUnavailable
	}
	return ms.log[i-base].Term, nil
}

// LastIndex returns the index of the last stored entry (Storage).
func (ms *MemoryStorage) LastIndex() (uint64, error) {
	ms.Lock()
	defer ms.Unlock()
	return ms.lastKept(), nil
}

// FirstIndex returns the index of the first entry still available (Storage).
func (ms *MemoryStorage) FirstIndex() (uint64, error) {
	ms.Lock()
	defer ms.Unlock()
	return ms.firstKept(), nil
}

// Snapshot returns the latest snapshot (Storage).
func (ms *MemoryStorage) Snapshot() (pb.Snapshot, error) {
	ms.Lock()
	defer ms.Unlock()
	return ms.snapshot, nil
}

// ApplySnapshot replaces the whole contents of the storage with snap: the
// log becomes empty with its compaction point at the snapshot's index and
// term. A snapshot not newer than the current one is refused with
// ErrSnapOutOfDate.
func (ms *MemoryStorage) ApplySnapshot(snap pb.Snapshot) error {
	ms.Lock()
	defer ms.Unlock()
	if snap.Metadata.Index <= ms.snapshot.Metadata.Index {
		return ErrSnapOutOfDate
	}
	ms.snapshot = snap
	ms.setLog([]pb.Entry{{Index: snap.Metadata.Index, Term: snap.Metadata.Term}})
	return nil
}

// CreateSnapshot records a snapshot of the state machine as of entry i, with
// the given data, and returns it; Snapshot returns it from then on. cs must
// be the result of the last ApplyConfChange if the configuration changed
// since the previous snapshot; nil keeps the previous ConfState. The log is
// not compacted (see Compact). An i not above the current snapshot yields
// ErrSnapOutOfDate, an i below the log's compaction point (its term is gone)
// ErrCompacted; an i past the last index is a caller bug and panics.
func (ms *MemoryStorage) CreateSnapshot(i uint64, cs *pb.ConfState, data []byte) (pb.Snapshot, error) {
	ms.Lock()
	defer ms.Unlock()
	term, err := ms.termForSnapshot(i)
	if err != nil {
		return pb.Snapshot{}, err
	}
	meta := &ms.snapshot.Metadata
	meta.Index, meta.Term = i, term
	if cs != nil {
		meta.ConfState = *cs
	}
	ms.snapshot.Data = data
	return ms.snapshot, nil
}

// termForSnapshot returns the term of entry i for a new snapshot at i, or
// why there can be no such snapshot.
func (ms *MemoryStorage) termForSnapshot(i uint64) (uint64, error) {
	base := ms.compactedIndex()
	switch {
	case i <= ms.snapshot.Metadata.Index:
		return 0, ErrSnapOutOfDate
	case i < base:
		// Compact may have run ahead of the last snapshot; below the
		// compaction point the term is no longer known.
		return 0, ErrCompacted
	case i > ms.lastKept():
		panic(fmt.Sprintf("MemoryStorage.CreateSnapshot: index %d is past the last index %d", i, ms.lastKept()))
	}
	return ms.log[i-base].Term, nil
}

// Compact discards every entry up to and including compactIndex, which
// becomes the new compaction point. Compacting at or below the current point
// returns ErrCompacted; compacting past the last index is a caller bug and
// panics. The application must not compact past what it has applied.
func (ms *MemoryStorage) Compact(compactIndex uint64) error {
	ms.Lock()
	defer ms.Unlock()
	base, last := ms.compactedIndex(), ms.lastKept()
	switch {
	case compactIndex <= base:
		return ErrCompacted
	case compactIndex > last:
		panic(fmt.Sprintf("MemoryStorage.Compact: index %d is past the last index %d", compactIndex, last))
	}
	// Room after the kept tail for as many entries as this compaction
	// drops, plus an eighth: an application that compacts at a steady pace
	// (every so many entries, or so often) then appends up to its next
	// compaction without growing the array (and copying the log log2(n)
	// times on the way), and the room follows the pace down after a burst.
	// The new array is at most an eighth larger than the one it replaces,
	// which held the tail and the dropped entries.
	tail := ms.log[compactIndex-base:]
	interval := int(compactIndex - base)
	room := len(tail) + interval + interval/8
	if ms.canSlide(room) {
		ms.setLog(ms.slideToFront(tail))
		return nil
	}
	ms.setLog(startingWithSentinel(tail, room))
	return nil
}

// canSlide reports whether Compact may move the kept tail to the front of
// the log's own array instead of a fresh one of room entries: no slot of
// the array was handed out (invariant 4; in steady state raft reads its
// own memory, not Entries), and the array is at least room and at most
// twice room, so that a burst's array is not pinned.
func (ms *MemoryStorage) canSlide(room int) bool {
	return !ms.lent && cap(ms.log) >= room && cap(ms.log) <= 2*room
}

// slideToFront moves tail, the end of ms.log, to the front of its array,
// turning its first entry into the compaction sentinel (invariant 1), and
// clears the slots it vacated, so that the dropped entries' payloads can be
// collected. It returns the moved log.
func (ms *MemoryStorage) slideToFront(tail []pb.Entry) []pb.Entry {
	sentinel := pb.Entry{Index: tail[0].Index, Term: tail[0].Term}
	n := copy(ms.log, tail) // tail overlaps ms.log: read it first
	ms.log[0] = sentinel
	clear(ms.log[n:])
	return ms.log[:n]
}

// startingWithSentinel copies tail into a fresh array with a capacity of
// at least room entries, turning its first entry into the compaction
// sentinel (invariant 1). Reusing a lent array would strip the payload of
// an entry a caller may still hold from Entries (invariant 3).
func startingWithSentinel(tail []pb.Entry, room int) []pb.Entry {
	out := make([]pb.Entry, len(tail), max(len(tail), room))
	out[0] = pb.Entry{Index: tail[0].Index, Term: tail[0].Term}
	copy(out[1:], tail[1:])
	return out
}

// Append adds entries to the log. Entries at or below the compaction point
// are skipped; an entry at an index the log already has replaces that entry
// and everything after it. entries must be contiguous and must start no
// later than LastIndex()+1: a gap would leave a hole in the log and panics.
func (ms *MemoryStorage) Append(entries []pb.Entry) error {
	if len(entries) == 0 {
		return nil
	}
	mustBeContiguous(entries)

	ms.Lock()
	defer ms.Unlock()

	first := ms.firstKept()
	if entries[len(entries)-1].Index < first {
		return nil // all of it is already compacted
	}
	if entries[0].Index < first {
		entries = entries[first-entries[0].Index:]
	}
	base := ms.compactedIndex()
	at := entries[0].Index - base
	switch {
	case at == uint64(len(ms.log)):
		// Slots beyond len were never handed out, so growing in place is safe.
		ms.setLog(append(ms.log, entries...))
	case at < uint64(len(ms.log)):
		// Capping forces a copy: log[at:] may still be held by callers.
		ms.setLog(append(ms.log[:at:at], entries...))
	default:
		panic(fmt.Sprintf("MemoryStorage.Append: entries start at index %d, leaving a gap after the last index %d",
			entries[0].Index, ms.lastKept()))
	}
	return nil
}

// mustBeContiguous panics unless ents have consecutive indexes; storing a
// broken run would violate invariant 2.
func mustBeContiguous(ents []pb.Entry) {
	for k := 1; k < len(ents); k++ {
		if ents[k].Index != ents[k-1].Index+1 {
			panic(fmt.Sprintf("MemoryStorage.Append: entries are not contiguous: index %d follows %d",
				ents[k].Index, ents[k-1].Index))
		}
	}
}
