package raft

import (
	"errors"
	"fmt"

	pb "github.com/raftkit/raft/raftpb"
)

// raftLog is a node's view of the Raft log: the durable part in Storage
// followed by the unstable part (entries and possibly a snapshot that are
// not persisted yet), plus the positions that say how far the log is known
// committed and how far the application has applied it.
//
// The unstable part wins where the two overlap: its entries may replace a
// conflicting suffix of storage that is still to be overwritten.
type raftLog struct {
	logger Logger

	// storage holds the entries persisted since the last snapshot.
	storage Storage
	// unstable holds what is appended but not persisted yet.
	unstable unstable

	// committed is the highest index known to be stored on a quorum.
	// Invariant: applied <= applying <= committed <= lastIndex().
	committed uint64
	// applied is the highest index the application reported applied
	// (raised on Advance or on an apply-thread response).
	// Invariant: applied <= applying.
	applied uint64
	// applying is the highest index handed to the application to apply
	// (raised when a Ready is accepted); entries up to it may still be in
	// flight. Invariant: applied <= applying <= committed.
	applying uint64

	// applyPacing bounds how much committed-entry data is out with the
	// application at once; its fields are promoted so that the state machine
	// reads them as raftLog fields.
	applyPacing
}

// applyPacing is raftLog's flow control for handing committed entries to
// the application (Config.MaxCommittedSizePerReady).
type applyPacing struct {
	// maxApplyingEntsSize bounds applyingEntsSize. At least one entry is
	// always let through when nothing is outstanding, so one oversized entry
	// cannot stall the log.
	maxApplyingEntsSize entryEncodingSize
	// applyingEntsSize is the encoded size of entries handed out by
	// nextCommittedEnts and not yet acknowledged through appliedTo.
	applyingEntsSize entryEncodingSize
	// applyingEntsPaused stops nextCommittedEnts until appliedTo frees room:
	// set when the outstanding size reached the bound, or when the last batch
	// had to stop short of what was appliable.
	applyingEntsPaused bool
}

// newLog returns a log over storage with no bound on the size of committed
// entries handed out at once.
func newLog(storage Storage, logger Logger) *raftLog {
	return newLogWithSize(storage, logger, noLimit)
}

// newLogWithSize returns a log over storage that hands out at most
// maxApplyingEntsSize bytes of committed entries before they are
// acknowledged. The log starts as committed and applied up to storage's
// compaction point, the latest snapshot.
func newLogWithSize(storage Storage, logger Logger, maxApplyingEntsSize entryEncodingSize) *raftLog {
	l := &raftLog{
		logger:      logger,
		storage:     storage,
		applyPacing: applyPacing{maxApplyingEntsSize: maxApplyingEntsSize},
	}
	snapIndex := l.storageFirstIndex() - 1
	l.committed, l.applied, l.applying = snapIndex, snapIndex, snapIndex
	next := l.storageLastIndex() + 1
	l.unstable = unstable{offset: next, offsetInProgress: next, logger: logger}
	return l
}

// storageFirstIndex asks storage for its first index. Storage failing to
// report its bounds leaves the log nothing to stand on, so it panics.
//
// A *MemoryStorage answers from the bounds it publishes atomically, which
// are always what its FirstIndex would return at this moment (the
// application may Compact, Append or ApplySnapshot at any time, so raft
// keeps no copy of its own). Other storages are asked every time.
func (l *raftLog) storageFirstIndex() uint64 {
	if ms, ok := l.storage.(*MemoryStorage); ok {
		return ms.first.Load()
	}
	i, err := l.storage.FirstIndex()
	if err != nil {
		panic(fmt.Errorf("raft: reading the first index from storage: %w", err))
	}
	return i
}

// storageLastIndex asks storage for its last index; see storageFirstIndex.
func (l *raftLog) storageLastIndex() uint64 {
	if ms, ok := l.storage.(*MemoryStorage); ok {
		return ms.last.Load()
	}
	i, err := l.storage.LastIndex()
	if err != nil {
		panic(fmt.Errorf("raft: reading the last index from storage: %w", err))
	}
	return i
}

// String summarizes the log's positions for log lines.
func (l *raftLog) String() string {
	return fmt.Sprintf("committed=%d, applied=%d, applying=%d, unstable.offset=%d, unstable.offsetInProgress=%d, len(unstable.Entries)=%d",
		l.committed, l.applied, l.applying, l.unstable.offset, l.unstable.offsetInProgress, len(l.unstable.entries))
}

// maybeAppend applies a leader's append (thesis §3.5): if the log has a.prev,
// the entries of a that are new or conflict with the log are written over
// it, and the commit index advances to committed, as far as a reaches. It
// returns the last index of a and true, or (0, false) when a.prev does not
// match and the leader must back off.
func (l *raftLog) maybeAppend(a logSlice, committed uint64) (lastnewi uint64, ok bool) {
	if !l.matchTerm(a.prev) {
		return 0, false
	}
	lastnewi = a.lastIndex()
	if at := l.findConflict(a.entries); at != 0 {
		if at <= l.committed {
			panic(fmt.Sprintf("raftLog.maybeAppend: entry %d conflicts with a committed entry (committed %d)", at, l.committed))
		}
		l.append(a.entries[at-a.prev.index-1:]...)
	}
	// Only what a covers is known to match the leader; beyond it the log may
	// still hold entries the leader's commit index says nothing about.
	l.commitTo(min(committed, lastnewi))
	return lastnewi, true
}

// append writes ents (contiguous) into the log at ents[0].Index, replacing
// whatever the log has from there on, and returns the new last index.
// Replacing a committed entry would break Raft's safety and panics.
func (l *raftLog) append(ents ...pb.Entry) uint64 {
	if len(ents) == 0 {
		return l.lastIndex()
	}
	if from := ents[0].Index; from <= l.committed {
		panic(fmt.Sprintf("raftLog.append: entries from index %d would overwrite committed entries (committed %d)", from, l.committed))
	}
	l.unstable.truncateAndAppend(ents)
	return l.lastIndex()
}

// findConflict returns the index of the first entry of ents (contiguous)
// that the log does not hold: either a conflict (same index, other term) or
// the first entry past the log's end. It returns 0 when the log already holds
// all of ents.
func (l *raftLog) findConflict(ents []pb.Entry) uint64 {
	for i := range ents {
		id := pbEntryID(&ents[i])
		if l.matchTerm(id) {
			continue
		}
		if id.index <= l.lastIndex() {
			l.logger.Infof("found conflict at index %d [existing term: %d, conflicting term: %d]",
				id.index, l.zeroTermOnOutOfBounds(l.term(id.index)), id.term)
		}
		return id.index
	}
	return 0
}

// findConflictByTerm guesses where this log stops agreeing with another log
// of which only the entry (index, term) is known. It returns the largest
// guess <= index whose term is at most term, or is unknown here (compacted or
// not stored), together with that term (0 when unknown). Leaders and
// followers use it to skip a whole term of mismatching entries per rejected
// append instead of one entry at a time.
func (l *raftLog) findConflictByTerm(index uint64, term uint64) (uint64, uint64) {
	for ; index > 0; index-- {
		ours, err := l.term(index)
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

// nextUnstableEnts returns the entries to hand out for persisting next.
func (l *raftLog) nextUnstableEnts() []pb.Entry { return l.unstable.nextEntries() }

// hasNextUnstableEnts reports whether there are entries to hand out for
// persisting.
func (l *raftLog) hasNextUnstableEnts() bool { return len(l.nextUnstableEnts()) > 0 }

// hasNextOrInProgressUnstableEnts reports whether any entries are not durable
// yet, whether or not they were already handed out.
func (l *raftLog) hasNextOrInProgressUnstableEnts() bool { return len(l.unstable.entries) > 0 }

// nextUnstableSnapshot returns the snapshot to hand out for persisting, if
// any.
func (l *raftLog) nextUnstableSnapshot() *pb.Snapshot { return l.unstable.nextSnapshot() }

// hasNextUnstableSnapshot reports whether a snapshot awaits persisting and
// has not been handed out yet.
func (l *raftLog) hasNextUnstableSnapshot() bool { return l.unstable.nextSnapshot() != nil }

// hasNextOrInProgressSnapshot reports whether a snapshot is not durable yet.
func (l *raftLog) hasNextOrInProgressSnapshot() bool { return l.unstable.snapshot != nil }

// appliableRange returns [lo, hi), the committed entries that may be handed
// to the application now, or an empty range when application must wait.
//
// Nothing is handed out while entry application is paused (the size bound),
// nor while a snapshot is pending: the snapshot has to be applied first, and
// mixing the two would leave the order of application unclear.
func (l *raftLog) appliableRange(allowUnstable bool) (lo, hi uint64) {
	if l.applyingEntsPaused || l.hasNextOrInProgressSnapshot() {
		return 0, 0
	}
	return l.applying + 1, l.maxAppliableIndex(allowUnstable) + 1
}

// nextCommittedEnts returns the next committed entries for the application
// to apply, at most the remaining size budget's worth (but at least one entry
// if any is appliable). With allowUnstable, committed entries that are not
// yet durable locally are included: committed means a quorum already stores
// them, so applying them early is safe (with async storage writes);
// otherwise only locally durable entries are returned.
func (l *raftLog) nextCommittedEnts(allowUnstable bool) []pb.Entry {
	lo, hi := l.appliableRange(allowUnstable)
	if lo >= hi {
		return nil
	}
	// Not paused means applyingEntsSize < maxApplyingEntsSize, or nothing is
	// outstanding; either way this does not underflow.
	budget := l.maxApplyingEntsSize - l.applyingEntsSize
	ents, err := l.slice(lo, hi, budget)
	if err != nil {
		// lo > applied >= the compaction point that Storage may have reached.
		panic(fmt.Errorf("raftLog.nextCommittedEnts: reading appliable entries [%d,%d): %w", lo, hi, err))
	}
	return ents
}

// hasNextCommittedEnts reports whether nextCommittedEnts would return
// anything, without reading any entries.
func (l *raftLog) hasNextCommittedEnts(allowUnstable bool) bool {
	lo, hi := l.appliableRange(allowUnstable)
	return lo < hi
}

// maxAppliableIndex is the highest index that may be applied: the commit
// index, further limited to the durable prefix unless allowUnstable.
func (l *raftLog) maxAppliableIndex(allowUnstable bool) uint64 {
	if allowUnstable {
		return l.committed
	}
	return min(l.committed, l.unstable.offset-1)
}

// snapshot returns the pending snapshot if there is one, else storage's.
func (l *raftLog) snapshot() (pb.Snapshot, error) {
	if s := l.unstable.snapshot; s != nil {
		return *s, nil
	}
	return l.storage.Snapshot()
}

// firstIndex is the index of the first entry the log can still return.
func (l *raftLog) firstIndex() uint64 {
	if i, ok := l.unstable.maybeFirstIndex(); ok {
		return i
	}
	return l.storageFirstIndex()
}

// lastIndex is the index of the last entry in the log.
func (l *raftLog) lastIndex() uint64 {
	if i, ok := l.unstable.maybeLastIndex(); ok {
		return i
	}
	return l.storageLastIndex()
}

// commitTo raises the commit index to tocommit; it never lowers it. A commit
// index past the end of the log means the log lost entries a quorum
// acknowledged, and panics.
func (l *raftLog) commitTo(tocommit uint64) {
	if tocommit <= l.committed {
		return
	}
	if last := l.lastIndex(); tocommit > last {
		panic(fmt.Sprintf("raftLog.commitTo: commit index %d is past the last index %d; was the raft log corrupted, truncated, or lost?",
			tocommit, last))
	}
	l.committed = tocommit
}

// appliedTo records that the application has applied everything up to i,
// returning size bytes of the outstanding budget.
func (l *raftLog) appliedTo(i uint64, size entryEncodingSize) {
	if i < l.applied || i > l.committed {
		panic(fmt.Sprintf("raftLog.appliedTo: applied index %d is outside [applied %d, committed %d]", i, l.applied, l.committed))
	}
	l.applied = i
	l.applying = max(l.applying, i)
	// Saturate: the application may report more than was counted.
	l.applyingEntsSize -= min(l.applyingEntsSize, size)
	l.applyingEntsPaused = l.applyingBudgetSpent()
}

// applyingBudgetSpent reports whether the outstanding size has reached the
// bound. Nothing outstanding never counts as spent, so that even a zero bound
// lets one batch (of at least one entry) through at a time.
func (p *applyPacing) applyingBudgetSpent() bool {
	return p.applyingEntsSize > 0 && p.applyingEntsSize >= p.maxApplyingEntsSize
}

// acceptApplying records that entries up to i, of size bytes, have been
// handed to the application. Application then pauses if the budget is used
// up, or if this batch stopped short of what was appliable (the next entry
// would have exceeded the budget, so asking again now would be pointless).
func (l *raftLog) acceptApplying(i uint64, size entryEncodingSize, allowUnstable bool) {
	if i > l.committed {
		panic(fmt.Sprintf("raftLog.acceptApplying: applying index %d is past the commit index %d (was applying %d)", i, l.committed, l.applying))
	}
	l.applying = i
	l.applyingEntsSize += size
	l.applyingEntsPaused = l.applyingBudgetSpent() || i < l.maxAppliableIndex(allowUnstable)
}

// stableTo records that storage now holds the entries up to id. A stale
// acknowledgement (the entry was since replaced) is ignored.
func (l *raftLog) stableTo(id entryID) { l.unstable.stableTo(id) }

// stableSnapTo records that storage now holds the snapshot at index i.
func (l *raftLog) stableSnapTo(i uint64) { l.unstable.stableSnapTo(i) }

// acceptUnstable records that the pending entries and snapshot have been
// handed out for persisting, so that the next Ready does not repeat them.
func (l *raftLog) acceptUnstable() { l.unstable.acceptInProgress() }

// lastEntryID identifies the last entry of the log.
func (l *raftLog) lastEntryID() entryID {
	last := l.lastIndex()
	term, err := l.term(last)
	if err != nil {
		panic(fmt.Errorf("raftLog.lastEntryID: the term of the last entry %d is unknown: %w", last, err))
	}
	return entryID{term: term, index: last}
}

// term returns the term of entry i. The log knows terms for
// [firstIndex()-1, lastIndex()]: the entry just before the first one is
// compacted, but its term is kept for matching appends against. Outside that
// range it returns ErrCompacted or ErrUnavailable. Other storage errors leave
// the log unusable and panic.
func (l *raftLog) term(i uint64) (uint64, error) {
	// The unstable part answers without touching storage, and whatever it
	// knows is in range.
	if t, ok := l.unstable.maybeTerm(i); ok {
		return t, nil
	}
	switch {
	case i+1 < l.firstIndex():
		return 0, ErrCompacted
	case i > l.lastIndex():
		return 0, ErrUnavailable
	}
	if ms, ok := l.storage.(*MemoryStorage); ok {
		// The leader's commit check and its MsgApps ask mostly for the
		// term of storage's last entry, which MemoryStorage publishes.
		if t, ok := ms.lastEntryTerm(i); ok {
			return t, nil
		}
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

// isOutOfLog reports whether err says an index is not in the log (compacted
// or past the end), as opposed to storage failing.
func isOutOfLog(err error) bool {
	return errors.Is(err, ErrCompacted) || errors.Is(err, ErrUnavailable)
}

// entries returns the entries from index i to the end of the log, at most
// maxSize bytes' worth (but at least one entry).
func (l *raftLog) entries(i uint64, maxSize entryEncodingSize) ([]pb.Entry, error) {
	last := l.lastIndex()
	if i > last {
		return nil, nil
	}
	return l.slice(i, last+1, maxSize)
}

// allEntries returns every entry the log holds.
func (l *raftLog) allEntries() []pb.Entry {
	for {
		ents, err := l.entries(l.firstIndex(), noLimit)
		if err == nil {
			return ents
		}
		// A compaction may have raced with reading the first index; retry.
		if !errors.Is(err, ErrCompacted) {
			panic(err)
		}
	}
}

// isUpToDate reports whether a log ending at their is at least as
// up-to-date as this one (thesis §3.6.1): a later last term wins, and with
// equal last terms the longer log wins; equal logs count as up-to-date.
func (l *raftLog) isUpToDate(their entryID) bool {
	our := l.lastEntryID()
	if their.term != our.term {
		return their.term > our.term
	}
	return their.index >= our.index
}

// matchTerm reports whether the log holds the entry id.
func (l *raftLog) matchTerm(id entryID) bool {
	t, err := l.term(id.index)
	return err == nil && t == id.term
}

// maybeCommit raises the commit index to at if the log holds the entry at.
// Leaders only commit by counting replicas of an entry of their own term
// (thesis §3.6.2), which the caller ensures; a zero term never counts.
func (l *raftLog) maybeCommit(at entryID) bool {
	if at.term == 0 || at.index <= l.committed || !l.matchTerm(at) {
		return false
	}
	l.commitTo(at.index)
	return true
}

// restore replaces the log with snapshot s: it becomes the pending snapshot
// and everything in the log up to its index is committed.
func (l *raftLog) restore(s pb.Snapshot) {
	l.logger.Infof("log [%s] starts to restore snapshot [index: %d, term: %d]", l, s.Metadata.Index, s.Metadata.Term)
	l.unstable.restore(s)
	// Only a leader's snapshot is restored, and it holds committed state.
	l.committed = s.Metadata.Index
}

// scan passes the entries of [lo, hi) to visit in consecutive pages of at
// most pageSize bytes (a single larger entry makes a page of its own). It
// stops at the first error, from reading the log or from visit; visit can
// return an error of its own to end the scan early. All of [lo, hi) must be
// in the log, or scan eventually fails.
func (l *raftLog) scan(lo, hi uint64, pageSize entryEncodingSize, visit func([]pb.Entry) error) error {
	for next := lo; next < hi; {
		page, err := l.slice(next, hi, pageSize)
		switch {
		case err != nil:
			return err
		case len(page) == 0:
			// Would loop forever; slice promises at least one entry.
			return fmt.Errorf("got 0 entries in [%d, %d)", next, hi)
		}
		if err = visit(page); err != nil {
			return err
		}
		next += uint64(len(page))
	}
	return nil
}

// slice returns the entries of [lo, hi), at most maxSize bytes' worth but at
// least one entry if the range is not empty. The range may span storage and
// the unstable part. lo below firstIndex() yields ErrCompacted; a range not
// within the log is a caller bug and panics. The caller may append to the
// result but must not modify the entries in it.
func (l *raftLog) slice(lo, hi uint64, maxSize entryEncodingSize) ([]pb.Entry, error) {
	if err := l.mustCheckOutOfBounds(lo, hi); err != nil || lo == hi {
		return nil, err
	}
	split := l.unstable.offset
	if lo >= split {
		ents := limitSize(l.unstable.slice(lo, hi), maxSize)
		return ents[:len(ents):len(ents)], nil
	}

	storedHi := min(hi, split)
	stored, err := l.storageEntries(lo, storedHi, maxSize)
	if err != nil {
		return nil, err
	}
	// Storage returning less than asked means the budget ran out there.
	if hi <= split || uint64(len(stored)) < storedHi-lo {
		return stored, nil
	}
	used := entsSize(stored)
	if used >= maxSize {
		return stored, nil
	}
	// Unlike the first entry of the result, unstable entries are only added
	// while they fit.
	tail := l.unstable.slice(split, hi)
	tail = tail[:fittingPrefix(tail, maxSize-used)]
	return extend(stored, tail), nil
}

// storageEntries reads [lo, hi) from storage, which the log expects to hold
// it in full. ErrCompacted (a compaction racing with the caller) is returned;
// a missing entry in the middle of the log, or any other storage failure,
// leaves the log unusable and panics.
func (l *raftLog) storageEntries(lo, hi uint64, maxSize entryEncodingSize) ([]pb.Entry, error) {
	ents, err := l.storage.Entries(lo, hi, uint64(maxSize))
	switch {
	case err == nil:
		return ents, nil
	case errors.Is(err, ErrCompacted):
		return nil, err
	case errors.Is(err, ErrUnavailable):
		panic(fmt.Sprintf("raftLog.slice: entries[%d:%d) is unavailable from storage", lo, hi))
	}
	panic(fmt.Errorf("raft: reading entries [%d,%d) from storage: %w", lo, hi, err))
}

// mustCheckOutOfBounds returns ErrCompacted when lo is below firstIndex(),
// and panics unless lo <= hi <= lastIndex()+1.
func (l *raftLog) mustCheckOutOfBounds(lo, hi uint64) error {
	if lo > hi {
		panic(fmt.Sprintf("raftLog.slice: invalid range, lo %d > hi %d", lo, hi))
	}
	first := l.firstIndex()
	if lo < first {
		return ErrCompacted
	}
	if last := l.lastIndex(); hi > last+1 {
		panic(fmt.Sprintf("raftLog.slice[%d,%d) out of bound [%d,%d]", lo, hi, first, last))
	}
	return nil
}

// zeroTermOnOutOfBounds passes a term lookup through, turning "not in the
// log" (compacted or past the end) into term 0. Other errors panic.
func (l *raftLog) zeroTermOnOutOfBounds(t uint64, err error) uint64 {
	switch {
	case err == nil:
		return t
	case isOutOfLog(err):
		return 0
	}
	panic(fmt.Errorf("raft: unexpected error looking up a term: %w", err))
}
