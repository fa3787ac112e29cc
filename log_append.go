package raft

import (
	"fmt"

	pb "github.com/raftkit/raft/raftpb"
)

// acceptAppend applies a leader's append (thesis §3.5): if the log has
// a.prev, the entries of a that are new or conflict with the log are written
// over it, and the commit index advances to commit, as far as a reaches. It
// returns the last index of a and true, or (0, false) when a.prev does not
// match and the leader must back off.
func (l *entryLog) acceptAppend(a logSlice, commit uint64) (lastNew uint64, ok bool) {
	if !l.has(a.prev) {
		return 0, false
	}
	lastNew = a.endIndex()
	if at := l.firstMismatch(a.entries); at != 0 {
		if at <= l.committed {
			panic(fmt.Sprintf("raft log: the leader's entry %d conflicts with a committed entry (committed %d)", at, l.committed))
		}
		l.put(a.entries[at-a.prev.index-1:], true /* adoptable */)
	}
	// Only what a covers is known to match the leader; beyond it the log may
	// still hold entries the leader's commit index says nothing about.
	l.raiseCommit(min(commit, lastNew))
	return lastNew, true
}

// firstMismatch returns the index of the first entry of ents (contiguous)
// that the log does not hold: a conflict (same index, other term) or the
// first entry past the log's end. It returns 0 when the log holds all of
// ents.
func (l *entryLog) firstMismatch(ents []pb.Entry) uint64 {
	for i := range ents {
		id := idOfEntry(&ents[i])
		if l.has(id) {
			continue
		}
		if id.index <= l.last() {
			l.logger.Infof("found conflict at index %d [existing term: %d, conflicting term: %d]",
				id.index, l.termOrZero(id.index), id.term)
		}
		return id.index
	}
	return 0
}

// backtrack guesses where this log stops agreeing with another log of which
// only the entry (index, term) is known. It returns the largest guess <=
// index whose term is at most term, or is unknown here (compacted or not
// stored), together with that term (0 when unknown). Leaders and followers
// use it to skip a whole term of mismatching entries per rejected append
// instead of one entry at a time.
func (l *entryLog) backtrack(index, term uint64) (uint64, uint64) {
	for ; index > 0; index-- {
		ours, err := l.termAt(index)
		if err != nil {
			// Unknown here: it might match, so stop guessing.
			return index, 0
		}
		if ours <= term {
			return index, ours
		}
	}
	return 0, 0
}

// write puts ents (contiguous) into the log at ents[0].Index, replacing
// whatever the log has from there on, and returns the new last index.
// Replacing a committed entry would break Raft's safety and panics, and so
// does a gap after the last entry. ents is copied.
func (l *entryLog) write(ents ...pb.Entry) uint64 {
	if len(ents) == 0 {
		return l.last()
	}
	l.put(ents, false /* adoptable */)
	return l.last()
}

// put is write for a non-empty ents. With adoptable, the log may keep ents'
// array instead of copying it (entries that came in a message, which raft
// may keep like etcd/raft does); the array is then never written, only
// read and handed out.
func (l *entryLog) put(ents []pb.Entry, adoptable bool) {
	from := ents[0].Index
	switch {
	case from <= l.committed:
		panic(fmt.Sprintf("raft log: entries from index %d would overwrite committed entries (committed %d)", from, l.committed))
	case from > l.last()+1:
		panic(fmt.Sprintf("raft log: entries start at index %d, leaving a gap after the last index %d", from, l.last()))
	case from == l.last()+1 && adoptable && l.adopts(len(ents)):
		// The new entries become the window as they are.
		n := len(ents)
		l.win.reset(l.lastID(), ents[:n:n])
	case from == l.last()+1:
		l.pushTail(ents)
	case from <= l.durable+1:
		// Durable entries are replaced: storage will be overwritten from
		// from on once these are written.
		l.logger.Infof("replace the unstable entries from index %d", from)
		l.overwrite(ents)
		l.durable, l.persisting = from-1, from-1
	default:
		l.logger.Infof("truncate the unstable entries before index %d", from)
		l.overwrite(ents)
		l.persisting = min(l.persisting, from-1)
	}
	l.trim()
}

// pushTail appends ents after the last entry. When the array has to grow, the
// entries no longer needed stay behind.
func (l *entryLog) pushTail(ents []pb.Entry) {
	if len(l.win.ents)+len(ents) > cap(l.win.ents) {
		l.win.regrow(l.keepFrom(), len(ents))
	}
	l.win.push(ents)
}

// adopts reports whether n entries from a leader's append may replace the
// window instead of being copied into it. Everything in memory must be
// durable (the window holds every entry that is not). Then either nothing
// there is needed any more, or the batch is large enough (a chunk) that
// copying it costs more than reading the few entries still to apply from
// storage.
func (l *entryLog) adopts(n int) bool {
	if l.durable != l.last() {
		return false
	}
	return n >= windowChunk || l.keepFrom() > l.last()
}

// overwrite replaces the log from ents[0].Index on, which may lie below the
// window (a durable entry the window let go of).
func (l *entryLog) overwrite(ents []pb.Entry) {
	from := ents[0].Index
	if from >= l.win.start() {
		l.win.replaceFrom(ents)
		return
	}
	prev := entryID{index: from - 1, term: l.termOrZero(from - 1)}
	n := len(ents)
	l.win.reset(prev, append(make([]pb.Entry, 0, n), ents...))
}

// keepFrom is the oldest index raft still expects to read from memory: the
// next entry to hand to the application, the first entry not durable, and
// the first entry a replicating follower may need again.
func (l *entryLog) keepFrom() uint64 {
	keep := min(l.applying+1, l.durable+1)
	if l.followerFloor != nil {
		keep = min(keep, l.followerFloor())
	}
	return keep
}

// trim shrinks the window to the entries not durable yet once it holds more
// than retainLimit bytes.
func (l *entryLog) trim() {
	if l.win.bytes > l.retainLimit && l.durable >= l.win.start() {
		l.win.release(l.durable + 1)
	}
}

// raiseCommit raises the commit index to i; it never lowers it. A commit
// index past the end of the log means the log lost entries a quorum
// acknowledged, and panics.
func (l *entryLog) raiseCommit(i uint64) {
	if i <= l.committed {
		return
	}
	if last := l.last(); i > last {
		panic(fmt.Sprintf("raft log: commit index %d is past the last index %d; was the raft log corrupted, truncated, or lost?", i, last))
	}
	l.committed = i
}

// commitOwn raises the commit index to at if the log holds the entry at.
// Leaders only commit by counting replicas of an entry of their own term
// (thesis §3.6.2), which the caller ensures; a zero term never counts.
func (l *entryLog) commitOwn(at entryID) bool {
	if at.term == 0 || at.index <= l.committed || !l.has(at) {
		return false
	}
	l.raiseCommit(at.index)
	return true
}

// installSnapshot replaces the log with snapshot s: it becomes the pending
// snapshot, the window restarts after it, and everything up to its index is
// committed (only a leader's snapshot is installed, and it holds committed
// state).
func (l *entryLog) installSnapshot(s pb.Snapshot) {
	l.logger.Infof("log [%s] starts to restore snapshot [index: %d, term: %d]", l, s.Metadata.Index, s.Metadata.Term)
	l.pending, l.pendingOut = &s, false
	l.win.reset(entryID{term: s.Metadata.Term, index: s.Metadata.Index}, nil)
	l.durable, l.persisting = s.Metadata.Index, s.Metadata.Index
	l.committed = s.Metadata.Index
}
