package raft

import (
	"fmt"

	pb "github.com/raftkit/raft/raftpb"
)

// This file moves the log's marks: what is handed out to be written and
// what is durable (the persistence side), what is handed out to be applied
// and what is applied (the application side).

// toPersist returns the entries not yet handed out to be written, or nil.
func (l *entryLog) toPersist() []pb.Entry {
	if l.persisting == l.last() {
		return nil
	}
	return l.win.span(l.persisting+1, l.last()+1)
}

// hasUndurable reports whether any entry is not durable yet, whether or not
// it was handed out.
func (l *entryLog) hasUndurable() bool { return l.durable < l.last() }

// snapshotToPersist returns the pending snapshot unless it was handed out
// already.
func (l *entryLog) snapshotToPersist() *pb.Snapshot {
	if l.pendingOut {
		return nil
	}
	return l.pending
}

// snapshotPending reports whether a snapshot is not durable yet.
func (l *entryLog) snapshotPending() bool { return l.pending != nil }

// markPersisting records that the entries and snapshot now pending have been
// handed out to be written, so that the next Ready does not repeat them.
func (l *entryLog) markPersisting() {
	l.persisting = l.last()
	l.pendingOut = l.pending != nil
}

// markDurable records that storage now holds the entries up to id. The
// acknowledgement is ignored unless id is an entry not durable yet with the
// same term: between the start and the end of a write, a new leader may
// have replaced that part of the log, and the replacement is not durable.
func (l *entryLog) markDurable(id entryID) {
	switch t, ok := l.win.term(id.index); {
	case id.index > l.durable && ok && t == id.term:
		l.durable = id.index
		l.persisting = max(l.persisting, id.index)
		l.trim()
	case id.index > l.durable && ok:
		l.logger.Infof("entry at (index,term)=(%d,%d) mismatched with "+
			"entry at (%d,%d) in unstable log; ignoring", id.index, id.term, id.index, t)
	case l.pending != nil && l.pending.Metadata.Index == id.index:
		l.logger.Infof("entry at index %d matched unstable snapshot; ignoring", id.index)
	default:
		l.logger.Infof("entry at index %d missing from unstable log; ignoring", id.index)
	}
}

// markSnapshotDurable records that storage now holds the snapshot at index
// i; an acknowledgement for any other index is stale and ignored.
func (l *entryLog) markSnapshotDurable(i uint64) {
	if l.pending != nil && l.pending.Metadata.Index == i {
		l.pending, l.pendingOut = nil, false
	}
}

// applyLimit is the highest index that may be applied: the commit index,
// further limited to the durable prefix unless allowUndurable.
func (l *entryLog) applyLimit(allowUndurable bool) uint64 {
	if allowUndurable {
		return l.committed
	}
	return min(l.committed, l.durable)
}

// applyRange returns [lo, hi), the committed entries that may be handed to
// the application now, or an empty range when application must wait:
// while paused (the size bound), and while a snapshot is pending, which has
// to be applied first.
func (l *entryLog) applyRange(allowUndurable bool) (lo, hi uint64) {
	if l.pacing.paused || l.pending != nil {
		return 0, 0
	}
	return l.applying + 1, l.applyLimit(allowUndurable) + 1
}

// toApply returns the next committed entries for the application to apply,
// at most the remaining size budget's worth (but at least one entry if any
// is appliable). With allowUndurable, committed entries that are not yet
// durable locally are included: committed means a quorum already stores
// them, so applying them early is safe (with async storage writes).
func (l *entryLog) toApply(allowUndurable bool) []pb.Entry {
	lo, hi := l.applyRange(allowUndurable)
	if lo >= hi {
		return nil
	}
	// Not paused means outstanding < limit, or nothing is outstanding;
	// either way this does not underflow.
	ents, err := l.read(lo, hi, l.pacing.limit-l.pacing.outstanding)
	if err != nil {
		// lo > applied >= the compaction point that Storage may have reached.
		panic(fmt.Errorf("raft log: reading appliable entries [%d,%d): %w", lo, hi, err))
	}
	return ents
}

// hasToApply reports whether toApply would return anything, without
// reading any entries.
func (l *entryLog) hasToApply(allowUndurable bool) bool {
	lo, hi := l.applyRange(allowUndurable)
	return lo < hi
}

// markApplying records that entries up to i, of size bytes, have been handed
// to the application. Application then pauses if the budget is used up, or
// if this batch stopped short of what was appliable (the next entry would
// have exceeded the budget, so asking again now would be pointless).
func (l *entryLog) markApplying(i uint64, size entryEncodingSize, allowUndurable bool) {
	if i > l.committed {
		panic(fmt.Sprintf("raft log: applying index %d is past the commit index %d (was applying %d)", i, l.committed, l.applying))
	}
	l.applying = i
	l.pacing.outstanding += size
	l.pacing.paused = l.pacing.spent() || i < l.applyLimit(allowUndurable)
}

// pacedSize is the size of ents as the apply pacing counts it: their
// encoded size, or 0 when application is not bounded, which then needs no
// accounting (and the sizes need not be computed).
func (l *entryLog) pacedSize(ents []pb.Entry) entryEncodingSize {
	if l.pacing.limit == noLimit {
		return 0
	}
	return encodedSizeOf(ents)
}

// markApplied records that the application has applied everything up to i,
// returning size bytes of the outstanding budget.
func (l *entryLog) markApplied(i uint64, size entryEncodingSize) {
	if i < l.applied || i > l.committed {
		panic(fmt.Sprintf("raft log: applied index %d is outside [applied %d, committed %d]", i, l.applied, l.committed))
	}
	l.applied = i
	l.applying = max(l.applying, i)
	// Saturate: the application may report more than was counted.
	l.pacing.outstanding -= min(l.pacing.outstanding, size)
	l.pacing.paused = l.pacing.spent()
}

// hasToPersist reports whether entries wait to be handed out to be written.
func (l *entryLog) hasToPersist() bool { return l.persisting < l.last() }

// hasSnapshotToPersist reports whether a snapshot waits to be handed out to
// be written.
func (l *entryLog) hasSnapshotToPersist() bool { return l.pending != nil && !l.pendingOut }
