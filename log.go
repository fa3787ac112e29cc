package raft

import (
	"errors"
	"fmt"

	pb "github.com/raftkit/raft/raftpb"
)

// entryLog is a node's Raft log: one in-memory window of entries that ends
// at the last index, a few marks that say how far the entries have got
// (durable, committed, handed to the application, applied), and Storage
// below the window.
//
// Every entry that is not durable yet is in the window. Durable entries stay
// while raft may still read them: when its array has to grow, the window
// lets go of what lies before the next entry to apply, the first entry not
// durable and the next entry a replicating follower may have to be sent
// again (keepFrom). So on a node whose storage keeps up, replication and
// application read memory only, and Storage is read for what lies below
// the window: a follower that fell behind, the entries to apply after a
// restart. Two things shrink the window further: a byte bound (retainLimit)
// past which it keeps only what is not durable, and a follower taking a
// leader's large batch as its new window (adopts), after which the few
// entries still to apply are read from Storage.
//
// The application may compact Storage at any time; the window does not hide
// that: an index below Storage's first index is compacted here too.
//
// Invariants (marks are entry indexes):
//  1. applied <= applying <= committed <= last().
//  2. win.prev.index <= durable <= persisting <= last(): entries above
//     durable are in the window only; those up to persisting were handed
//     out to be written.
//  3. While a snapshot is pending (received, not durable yet), the window
//     starts right after it: win.prev is the snapshot's last entry.
type entryLog struct {
	logger  Logger
	storage Storage
	// bounds is storage's lock-free view of its bounds, when it has one.
	bounds StorageBounds

	win window

	// pending is a snapshot from the leader that is not durable yet, and
	// pendingOut says it was handed out to be written.
	pending    *pb.Snapshot
	pendingOut bool

	// durable is the last index known to be in Storage; persisting the last
	// index handed out to be written (see invariant 2).
	durable, persisting uint64
	// committed is the highest index known to be stored on a quorum.
	committed uint64
	// applying is the highest index handed to the application to apply;
	// entries up to it may still be in flight.
	applying uint64
	// applied is the highest index the application reported applied.
	applied uint64

	pacing applyPacing

	// retainLimit bounds the payload bytes of the window; past it the
	// durable entries are dropped from memory (see Config.MaxInflightBytes).
	retainLimit entryPayloadSize
	// followerFloor, when set, returns the lowest index the leader expects
	// to send to a replicating follower; the window keeps entries from there
	// on while it can (nil: no such need, e.g. in tests of the log alone).
	followerFloor func() uint64
}

// defaultRetainBytes is the window's byte bound when Config.MaxInflightBytes
// leaves it open.
const defaultRetainBytes = 4 << 20

// applyPacing is the log's flow control for handing committed entries to
// the application (Config.MaxCommittedSizePerReady).
type applyPacing struct {
	// limit bounds outstanding. At least one entry is always let through
	// when nothing is outstanding, so one oversized entry cannot stall the
	// log.
	limit entryEncodingSize
	// outstanding is the encoded size of entries handed out and not yet
	// reported applied.
	outstanding entryEncodingSize
	// paused stops handing out entries until markApplied frees room: set
	// when outstanding reached the limit, or when the last batch had to stop
	// short of what was appliable.
	paused bool
}

// spent reports whether the outstanding size has reached the limit. Nothing
// outstanding never counts as spent, so that even a zero limit lets one
// batch (of at least one entry) through at a time.
func (p *applyPacing) spent() bool {
	return p.outstanding > 0 && p.outstanding >= p.limit
}

// openLog returns the log over storage as storage has it; see open.
func openLog(storage Storage, logger Logger, applyLimit entryEncodingSize) *entryLog {
	l := &entryLog{}
	l.open(storage, logger, applyLimit)
	return l
}

// open sets the zero log l up over storage as storage has it: everything up
// to its compaction point committed and applied, and an empty window after
// its last entry. applyLimit bounds the committed entries out with the
// application at once. (In place, so that the log can live inside raft
// rather than in an allocation of its own behind a pointer.)
func (l *entryLog) open(storage Storage, logger Logger, applyLimit entryEncodingSize) {
	*l = entryLog{
		logger:      logger,
		storage:     storage,
		pacing:      applyPacing{limit: applyLimit},
		retainLimit: defaultRetainBytes,
	}
	l.bounds, _ = storage.(StorageBounds)
	first, last, lastTerm := l.readStorageBounds()
	l.committed, l.applying, l.applied = first-1, first-1, first-1
	l.win.reset(entryID{term: lastTerm, index: last}, nil)
	l.durable, l.persisting = last, last
}

// readStorageBounds reads storage's first and last index and the last entry's
// term, through the fast path when there is one. Storage failing to report
// its bounds leaves the log nothing to stand on, so it panics.
func (l *entryLog) readStorageBounds() (first, last, lastTerm uint64) {
	if l.bounds != nil {
		return l.bounds.LogBounds()
	}
	var err error
	if first, err = l.storage.FirstIndex(); err == nil {
		if last, err = l.storage.LastIndex(); err == nil {
			lastTerm, err = l.storage.Term(last)
		}
	}
	if err != nil {
		panic(fmt.Errorf("raft: reading the log's bounds from storage: %w", err))
	}
	return first, last, lastTerm
}

// storageFirst is storage's first index, asked every time: the application
// may compact at any moment.
func (l *entryLog) storageFirst() uint64 {
	if l.bounds != nil {
		first, _, _ := l.bounds.LogBounds()
		return first
	}
	i, err := l.storage.FirstIndex()
	if err != nil {
		panic(fmt.Errorf("raft: reading the first index from storage: %w", err))
	}
	return i
}

// String summarizes the log's positions for log lines, in the words etcd's
// log lines use (offset: the first entry not known durable).
func (l *entryLog) String() string {
	return fmt.Sprintf("committed=%d, applied=%d, applying=%d, unstable.offset=%d, unstable.offsetInProgress=%d, len(unstable.Entries)=%d",
		l.committed, l.applied, l.applying, l.durable+1, l.persisting+1, l.last()-l.durable)
}

// first is the index of the first entry the log can still return.
func (l *entryLog) first() uint64 {
	if l.pending != nil {
		return l.pending.Metadata.Index + 1
	}
	return l.storageFirst()
}

// last is the index of the last entry in the log.
func (l *entryLog) last() uint64 { return l.win.end() }

// lastID identifies the last entry of the log.
func (l *entryLog) lastID() entryID { return l.win.lastID() }

// termAt returns the term of entry i. The log knows terms for
// [first()-1, last()]: the entry just before the first one is compacted, but
// its term is kept for matching appends against. Outside that range it
// returns ErrCompacted or ErrUnavailable. Other storage errors leave the log
// unusable and panic.
func (l *entryLog) termAt(i uint64) (uint64, error) {
	if i > l.last() {
		return 0, ErrUnavailable
	}
	if t, ok := l.win.term(i); ok && (i > l.durable || i+1 >= l.first()) {
		// Not durable means not compactable; otherwise the application may
		// have compacted it away behind the window.
		return t, nil
	}
	if i+1 < l.first() {
		return 0, ErrCompacted
	}
	t, err := l.storage.Term(i)
	if err != nil {
		if !isOutOfLog(err) {
			panic(fmt.Errorf("raft: reading the term of entry %d from storage: %w", i, err))
		}
		return 0, err
	}
	return t, nil
}

// termOrZero is termAt with "not in the log" read as term 0.
func (l *entryLog) termOrZero(i uint64) uint64 {
	t, err := l.termAt(i)
	if err != nil && !isOutOfLog(err) {
		panic(fmt.Errorf("raft: unexpected error looking up a term: %w", err))
	}
	return t
}

// isOutOfLog reports whether err says an index is not in the log (compacted
// or past the end), as opposed to storage failing.
func isOutOfLog(err error) bool {
	return errors.Is(err, ErrCompacted) || errors.Is(err, ErrUnavailable)
}

// has reports whether the log holds the entry id.
func (l *entryLog) has(id entryID) bool {
	t, err := l.termAt(id.index)
	return err == nil && t == id.term
}

// upToDate reports whether a log ending at theirs is at least as up-to-date
// as this one (thesis §3.6.1): a later last term wins, and with equal last
// terms the longer log wins; equal logs count as up-to-date.
func (l *entryLog) upToDate(theirs entryID) bool {
	ours := l.lastID()
	if theirs.term != ours.term {
		return theirs.term > ours.term
	}
	return theirs.index >= ours.index
}

// latestSnapshot returns the pending snapshot if there is one, else
// storage's.
func (l *entryLog) latestSnapshot() (pb.Snapshot, error) {
	if l.pending != nil {
		return *l.pending, nil
	}
	return l.storage.Snapshot()
}
