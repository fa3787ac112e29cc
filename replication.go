package raft

import (
	pb "github.com/raftkit/raft/raftpb"
	"github.com/raftkit/raft/tracker"
)

// replicate sends the peer to, whose progress is pr, the entries after
// pr.Next-1 that fit in one message, with the commit index, unless its flow
// is paused. An append without entries goes out only if sendIfEmpty (it
// still carries the commit index, but is noise within a batch). If the log
// no longer holds what the peer needs, a snapshot goes instead. It reports
// whether anything was sent.
func (r *raft) replicate(to uint64, pr *tracker.Progress, sendIfEmpty bool) bool {
	if pr.IsPaused() {
		return false
	}
	prev := pr.Next - 1
	prevTerm, err := r.log.termAt(prev)
	if err != nil {
		// The entry is compacted: only a snapshot can catch the peer up.
		return r.offerSnapshot(to, pr)
	}
	var ents []pb.Entry
	// With a full window, send only an empty append: if everything in flight
	// was lost, its answer (prompted by heartbeats) is what empties the
	// window again.
	if pr.State != tracker.StateReplicate || !pr.Inflights.Full() {
		ents, err = r.log.entriesFrom(pr.Next, r.maxMsgSize)
	}
	if len(ents) == 0 && !sendIfEmpty {
		return false
	}
	if err != nil {
		return r.offerSnapshot(to, pr)
	}
	commit := r.log.committed
	r.send(&pb.Message{To: to, Type: pb.MsgApp, Index: prev, LogTerm: prevTerm, Entries: ents, Commit: commit})
	pr.SentEntries(len(ents), uint64(payloadBytes(ents)))
	pr.SentCommit(commit)
	return true
}

// replicateAll sends every other member what it lacks, or an empty append
// that carries the commit index, in ID order.
func (r *raft) replicateAll() {
	r.order.Visit(func(id uint64, pr *tracker.Progress) {
		if id != r.id {
			r.replicate(id, pr, true /* sendIfEmpty */)
		}
	})
}

// appendOwn appends es to the leader's log in its term and queues the
// leader's own acknowledgement, to be counted once the entries are durable
// (the leader sends itself no MsgApp). It reports false, appending nothing,
// if es would exceed the uncommitted-size limit.
func (r *raft) appendOwn(es ...pb.Entry) bool {
	last := r.log.last()
	for i := range es {
		es[i].Term, es[i].Index = r.Term, last+1+uint64(i)
	}
	if !r.uncommitted.admit(es) {
		r.logger.Warningf("%x appending new entries to log would exceed uncommitted entry size limit; dropping proposal", r.id)
		return false
	}
	last = r.log.write(es...)
	r.send(&pb.Message{To: r.id, Type: pb.MsgAppResp, Index: last})
	return true
}

// advanceCommit raises the commit index to what a quorum holds, provided that
// entry is of the leader's term (thesis §3.6.2). It reports whether the
// commit index moved. Leaders only.
func (r *raft) advanceCommit() bool {
	return r.log.commitOwn(entryID{term: r.Term, index: r.order.Committed()})
}

// uncommittedTail estimates (never overestimates) the payload bytes of a
// leader's uncommitted log tail, and bounds it by
// Config.MaxUncommittedEntriesSize.
type uncommittedTail struct {
	size, max entryPayloadSize
}

// admit takes es into the tail if the tail stays within its limit, and
// reports whether it did. An empty tail admits anything, and empty payloads
// are always admitted (a new leader's entry, leaving a joint
// configuration).
func (u *uncommittedTail) admit(es []pb.Entry) bool {
	size := payloadBytes(es)
	if u.size > 0 && size > 0 && u.size+size > u.max {
		return false
	}
	u.size += size
	return true
}

// release takes committed (applied) payload out of the tail. The estimate
// may be low (it restarts at 0 with every role change), so it saturates at
// 0.
func (u *uncommittedTail) release(s entryPayloadSize) {
	u.size -= min(s, u.size)
}

// handlePropose appends a proposal to the leader's log and replicates it.
func (r *raft) handlePropose(m *pb.Message) error {
	if r.order.Progress(r.id) == nil {
		// A leader removed from the configuration takes no new proposals.
		return ErrProposalDropped
	}
	if r.leadTransferee != None {
		r.logger.Debugf("%x [term %d] transfer leadership to %x is in progress; dropping proposal", r.id, r.Term, r.leadTransferee)
		return ErrProposalDropped
	}
	r.screenConfChanges(m.Entries)
	if !r.appendOwn(m.Entries...) {
		return ErrProposalDropped
	}
	r.replicateAll()
	return nil
}

// appendedSlice is the slice of the leader's log that MsgApp m carries.
func appendedSlice(m *pb.Message) logSlice {
	return logSlice{term: m.Term, prev: entryID{term: m.LogTerm, index: m.Index}, entries: m.Entries}
}

// handleAppend applies a leader's append (thesis §3.5) and answers
// it: with the last index it now matches, or with a rejection that hints
// where the logs may agree.
func (r *raft) handleAppend(m *pb.Message) {
	matched := r.log.committed
	// Below the commit index every log agrees with the leader's: the
	// answer is the commit index, where the leader can continue.
	if m.Index >= matched {
		last, ok := r.log.acceptAppend(appendedSlice(m), m.Commit)
		if !ok {
			r.logger.Debugf("%x [logterm: %d, index: %d] rejected MsgApp [logterm: %d, index: %d] from %x",
				r.id, r.log.termOrZero(m.Index), m.Index, m.LogTerm, m.Index, m.From)
			r.rejectAppend(m)
			return
		}
		matched = last
	}
	r.send(&pb.Message{To: m.From, Type: pb.MsgAppResp, Index: matched})
}

// rejectAppend answers an append whose previous entry does not match.
//
// The hint is the largest (index, term) of this log with index <= the
// append's previous index and term <= its previous term: every entry of
// the leader's log up to there has a term at most that, so the entries
// above the hint with larger terms cannot match and need not be probed one
// by one. The index is at least the commit index here, so the hint names a
// real entry (term 0 only for an empty log).
func (r *raft) rejectAppend(m *pb.Message) {
	hintIndex, hintTerm := r.log.backtrack(min(m.Index, r.log.last()), m.LogTerm)
	r.send(&pb.Message{
		To:         m.From,
		Type:       pb.MsgAppResp,
		Index:      m.Index,
		Reject:     true,
		RejectHint: hintIndex,
		LogTerm:    hintTerm,
	})
}

// handleAppendResp handles a peer's answer to an append (or the leader's
// own acknowledgement of its durable entries). Any answer shows the peer
// is alive.
func (r *raft) handleAppendResp(m *pb.Message, pr *tracker.Progress) {
	pr.RecentActive = true
	r.noteAppendAnswer(m.From)
	if m.Reject {
		r.handleAppendRejection(m, pr)
		return
	}
	r.handleAppendAck(m, pr)
}

// handleAppendRejection moves the peer's next index back after a rejected
// append and probes again.
//
// The follower's hint is its entry (RejectHint, LogTerm). When the leader's
// own entries down to the hint have larger terms than LogTerm, none of them
// can match the follower's (terms only grow along a log), so the leader
// skips to its largest entry at or below the hint with a term <= LogTerm:
// at most one probe per term of the leader's log. A zero LogTerm (an empty
// follower log, or an old follower) leaves the hint as it is.
func (r *raft) handleAppendRejection(m *pb.Message, pr *tracker.Progress) {
	r.logger.Debugf("%x received MsgAppResp(rejected, hint: (index %d, term %d)) from %x for index %d",
		r.id, m.RejectHint, m.LogTerm, m.From, m.Index)
	next := m.RejectHint
	if m.LogTerm > 0 {
		next, _ = r.log.backtrack(m.RejectHint, m.LogTerm)
	}
	if !pr.MaybeDecrTo(m.Index, next) {
		return
	}
	r.logger.Debugf("%x decreased progress of %x to [%s]", r.id, m.From, pr)
	if pr.State == tracker.StateReplicate {
		pr.BecomeProbe()
	}
	r.replicate(m.From, pr, true /* sendIfEmpty */)
}

// handleAppendAck processes an accepted append (from a peer, or the
// leader's own durable-append acknowledgement).
func (r *raft) handleAppendAck(m *pb.Message, pr *tracker.Progress) {
	// A duplicate acknowledgement still matters to a probing peer whose log
	// is caught up: it shows the peer can switch to streaming.
	if !pr.MaybeUpdate(m.Index) && (pr.Match != m.Index || pr.State != tracker.StateProbe) {
		return
	}
	r.advanceFlowState(m.From, pr, m.Index)
	if r.advanceCommit() {
		// The leader committed in its term, so deferred reads can be served.
		r.serveDeferredReads()
		r.replicateAll()
	} else if m.From != r.id && pr.CanBumpCommit(r.log.committed) {
		// The peer may not know the latest commit index; tell it now rather
		// than at the next heartbeat.
		r.replicate(m.From, pr, true /* sendIfEmpty */)
	}
	if m.From != r.id {
		// The window may have opened for several messages.
		for r.replicate(m.From, pr, false /* sendIfEmpty */) {
		}
	}
	if m.From == r.leadTransferee && pr.Match == r.log.last() {
		r.logger.Infof("%x sent MsgTimeoutNow to %x after received MsgAppResp", r.id, m.From)
		r.hurryTransferee(m.From)
	}
}

// advanceFlowState moves the peer's flow state on after an acknowledgement
// of index: a probed peer starts streaming; a peer waiting for a snapshot
// resumes from the log as soon as the log can catch it up (whatever
// snapshot got it there); a streaming peer's window frees up to index.
func (r *raft) advanceFlowState(id uint64, pr *tracker.Progress, index uint64) {
	switch {
	case pr.State == tracker.StateProbe:
		pr.BecomeReplicate()
	case pr.State == tracker.StateSnapshot && pr.Match+1 >= r.log.first():
		r.logger.Debugf("%x recovered from needing snapshot, resumed sending replication messages to %x [%s]", r.id, id, pr)
		// Through probing, which accounts for the pending snapshot, to
		// streaming right away, so that Status is consistent meanwhile.
		pr.BecomeProbe()
		pr.BecomeReplicate()
	case pr.State == tracker.StateReplicate:
		pr.Inflights.FreeLE(index)
	}
}

// handleStorageAppendResp records what the append thread made durable.
func (r *raft) handleStorageAppendResp(m *pb.Message) {
	if m.Index != 0 {
		r.log.markDurable(entryID{term: m.LogTerm, index: m.Index})
	}
	if m.Snapshot != nil {
		r.snapshotApplied(m.Snapshot)
	}
}

// handleStaleStorageAppendResp handles a storage append response from an
// earlier term. Its entries may since have been replaced in the log (not
// yet durably) by a later leader's at the same indexes (the ABA problem that the
// entry's term alone cannot rule out), so they are not marked durable. A
// snapshot is committed state, durable whatever the term.
func (r *raft) handleStaleStorageAppendResp(m *pb.Message) {
	if m.Index != 0 {
		r.logger.Infof("%x [term: %d] ignored entry appends from a %s message with lower term [term: %d]",
			r.id, r.Term, m.Type, m.Term)
	}
	if m.Snapshot != nil {
		r.snapshotApplied(m.Snapshot)
	}
}
