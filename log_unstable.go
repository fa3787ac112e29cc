package raft

import (
	"fmt"

	pb "github.com/raftkit/raft/raftpb"
)

// unstable is the part of the log that Storage does not reflect yet: entries
// appended since the last persistence, and possibly a snapshot received from
// the leader. It holds them until they are handed out in a Ready, and keeps
// holding them while they are being written, so that the log reads the same
// before and after the write; stableTo and stableSnapTo then drop what
// storage now has.
//
// Numbered invariants:
//  1. entries[k].Index == offset+k for every k.
//  2. offset <= offsetInProgress <= offset+len(entries).
//  3. If snapshot != nil, snapshot.Metadata.Index < offset: the entries
//     continue the log after the snapshot.
//  4. offset may be at or below storage's last index: the first entries are
//     then meant to overwrite a conflicting storage suffix when persisted.
//  5. Slices handed out (slice, nextEntries) have capacity == length, and the
//     array slots they cover are never written again.
type unstable struct {
	// snapshot is the pending snapshot, if any.
	snapshot *pb.Snapshot
	// snapshotInProgress is set once snapshot has been handed out for
	// persisting; it is then no longer offered by nextSnapshot.
	snapshotInProgress bool

	// entries are the pending entries; see invariant 1.
	entries []pb.Entry
	// offset is the index of entries[0], or the index the next entry would
	// take if entries is empty.
	offset uint64
	// arrayCap is the capacity of the array behind entries, counted from its
	// first slot: persisted entries before entries[0] still occupy it.
	arrayCap int
	// offsetInProgress is one past the last entry handed out for persisting;
	// entries below it are not offered by nextEntries again. See invariant 2.
	offsetInProgress uint64

	logger Logger
}

// end is one past the index of the last unstable entry.
func (u *unstable) end() uint64 { return u.offset + uint64(len(u.entries)) }

// maybeFirstIndex returns the first log index after the pending snapshot, if
// there is one; otherwise the first index is storage's business.
func (u *unstable) maybeFirstIndex() (uint64, bool) {
	if u.snapshot == nil {
		return 0, false
	}
	return u.snapshot.Metadata.Index + 1, true
}

// maybeLastIndex returns the index of the last unstable entry, or of the
// pending snapshot when there are no entries. With neither, the last index
// is storage's business.
func (u *unstable) maybeLastIndex() (uint64, bool) {
	switch {
	case len(u.entries) > 0:
		return u.end() - 1, true
	case u.snapshot != nil:
		return u.snapshot.Metadata.Index, true
	}
	return 0, false
}

// maybeTerm returns the term of entry i if the unstable part knows it: i is
// an unstable entry or the pending snapshot's last index.
func (u *unstable) maybeTerm(i uint64) (uint64, bool) {
	if i >= u.offset && i < u.end() {
		return u.entries[i-u.offset].Term, true
	}
	if u.snapshot != nil && u.snapshot.Metadata.Index == i {
		return u.snapshot.Metadata.Term, true
	}
	return 0, false
}

// nextEntries returns the entries not yet handed out for persisting, or nil.
func (u *unstable) nextEntries() []pb.Entry {
	from := u.offsetInProgress - u.offset
	if from == uint64(len(u.entries)) {
		return nil
	}
	return u.entries[from:len(u.entries):len(u.entries)]
}

// nextSnapshot returns the pending snapshot unless it has already been handed
// out for persisting.
func (u *unstable) nextSnapshot() *pb.Snapshot {
	if u.snapshotInProgress {
		return nil
	}
	return u.snapshot
}

// acceptInProgress records that everything currently pending has been handed
// out for persisting. Entries and snapshots added later are offered again.
func (u *unstable) acceptInProgress() {
	u.offsetInProgress = u.end()
	u.snapshotInProgress = u.snapshot != nil
}

// stableTo drops the entries up to and including id, now that storage holds
// them. The acknowledgement is ignored unless id is still an unstable entry
// with the same term: between the start and the end of a write, a new leader
// may have replaced that part of the log (the same index with another term),
// and the replacement is not durable yet.
func (u *unstable) stableTo(id entryID) {
	term, ok := u.maybeTerm(id.index)
	switch {
	case !ok:
		u.logger.Infof("entry at index %d missing from unstable log; ignoring", id.index)
		return
	case id.index < u.offset:
		u.logger.Infof("entry at index %d matched unstable snapshot; ignoring", id.index)
		return
	case term != id.term:
		u.logger.Infof("entry at (index,term)=(%d,%d) mismatched with "+
			"entry at (%d,%d) in unstable log; ignoring", id.index, id.term, id.index, term)
		return
	}
	u.entries = u.entries[id.index+1-u.offset:]
	u.offset = id.index + 1
	u.offsetInProgress = max(u.offsetInProgress, u.offset)
	u.compactEntries()
}

// unstableChunk is the room for entries that the unstable log grows by at
// least when its array is full. On a busy node the unstable log empties with
// nearly every write, and growing it entry by entry would allocate for
// nearly every append; a chunk serves many appends. The price is that the
// array, and so the payloads of up to a chunk's worth of persisted entries,
// stays reachable until the chunk is used up.
const unstableChunk = 32

// compactEntries lets go of the array behind entries when it holds far more
// than what is still unstable, so that persisted entries (and their
// payloads) can be collected. The live entries are copied rather than
// cleared in place: Ready consumers may still hold slices of the old array.
// A small array (at most two chunks) is kept, so that its unused rest serves
// the next appends (invariant 5: those slots were never handed out).
func (u *unstable) compactEntries() {
	switch {
	case len(u.entries) == cap(u.entries) && len(u.entries) == 0:
		u.setEntries(nil)
	case max(u.arrayCap, cap(u.entries)) <= 2*unstableChunk:
	case len(u.entries) == 0:
		u.setEntries(nil)
	case 2*len(u.entries) < max(u.arrayCap, cap(u.entries)):
		u.setEntries(append([]pb.Entry(nil), u.entries...))
	}
}

// setEntries makes ents, the start of an array, the unstable entries.
func (u *unstable) setEntries(ents []pb.Entry) {
	u.entries = ents
	u.arrayCap = cap(ents)
}

// stableSnapTo drops the pending snapshot once storage holds the snapshot at
// index i; an acknowledgement for any other index is stale and ignored.
func (u *unstable) stableSnapTo(i uint64) {
	if u.snapshot == nil || u.snapshot.Metadata.Index != i {
		return
	}
	u.snapshot = nil
	u.snapshotInProgress = false
}

// restore makes s the pending snapshot and discards all pending entries: the
// log now continues right after s.
func (u *unstable) restore(s pb.Snapshot) {
	u.snapshot = &s
	u.snapshotInProgress = false
	u.setEntries(nil)
	u.offset = s.Metadata.Index + 1
	u.offsetInProgress = u.offset
}

// truncateAndAppend puts ents (contiguous, non-empty) into the log at
// ents[0].Index, first dropping whatever the log has from that index on.
// ents must not start beyond the current end: that would leave a gap.
func (u *unstable) truncateAndAppend(ents []pb.Entry) {
	from := ents[0].Index
	switch {
	case from == u.end():
		// Slots past len(entries) were never handed out (invariant 5).
		u.grow(len(ents))
		u.entries = append(u.entries, ents...)
	case from <= u.offset:
		// Everything pending is replaced, possibly along with a storage suffix
		// (invariant 4). Cap ents so that later appends copy instead of writing
		// into the caller's array.
		u.logger.Infof("replace the unstable entries from index %d", from)
		u.setEntries(ents[:len(ents):len(ents)])
		u.offset = from
		u.offsetInProgress = from
	case from < u.end():
		// Keep the prefix before from. The capped slice makes append copy, so
		// that entries being persisted from the old array stay intact.
		u.logger.Infof("truncate the unstable entries before index %d", from)
		u.setEntries(append(u.slice(u.offset, from), ents...))
		u.offsetInProgress = min(u.offsetInProgress, from)
	default:
		panic(fmt.Sprintf("unstable.truncateAndAppend: entries start at index %d, leaving a gap after the last unstable index %d",
			from, u.end()-1))
	}
}

// grow makes room for n more entries, moving the entries to a fresh array
// if the current one lacks the room. The spare room is for the small
// appends that follow (a leader's proposals): a batch of at least a chunk
// (a follower's MsgApp) gets an array of just the room the entries need,
// since the next batch is as likely to find the log emptied by then.
func (u *unstable) grow(n int) {
	if len(u.entries)+n <= cap(u.entries) {
		return
	}
	spare := unstableChunk
	if n >= unstableChunk {
		spare = 0
	}
	grown := make([]pb.Entry, len(u.entries), 2*len(u.entries)+n+spare)
	copy(grown, u.entries)
	u.setEntries(grown)
}

// slice returns the unstable entries with indexes in [lo, hi), which must lie
// within the unstable entries. The caller may append to the result (it has no
// spare capacity) but must not modify the entries, which stay shared.
func (u *unstable) slice(lo, hi uint64) []pb.Entry {
	if lo > hi || lo < u.offset || hi > u.end() {
		panic(fmt.Sprintf("unstable.slice[%d,%d) is not within the unstable entries [%d,%d)", lo, hi, u.offset, u.end()))
	}
	return u.entries[lo-u.offset : hi-u.offset : hi-u.offset]
}
