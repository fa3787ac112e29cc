package raft

import (
	"errors"
	"fmt"
	"slices"

	pb "github.com/raftkit/raft/raftpb"
	"github.com/raftkit/raft/tracker"
)

// offerSnapshot sends the peer the latest snapshot, because the log no
// longer holds what it needs, and reports whether it did. Only peers heard
// from recently get one (a snapshot is expensive, and a dead peer's would be
// wasted); a snapshot storage cannot produce yet is retried later.
func (r *raft) offerSnapshot(to uint64, pr *tracker.Progress) bool {
	if !pr.RecentActive {
		r.logger.Debugf("ignore sending snapshot to %x since it is not recently active", to)
		return false
	}
	snap, err := r.log.latestSnapshot()
	if errors.Is(err, ErrSnapshotTemporarilyUnavailable) {
		r.logger.Debugf("%x failed to send snapshot to %x because snapshot is temporarily unavailable", r.id, to)
		return false
	}
	if err != nil {
		panic(fmt.Errorf("raft: %x reading the snapshot for %x: %w", r.id, to, err))
	}
	if IsEmptySnap(snap) {
		// The log is compacted, so storage must have a snapshot covering it.
		panic(fmt.Sprintf("raft: %x needs a snapshot for %x but storage has none", r.id, to))
	}
	idx, term := snap.Metadata.Index, snap.Metadata.Term
	r.logger.Debugf("%x [firstindex: %d, commit: %d] sent snapshot[index: %d, term: %d] to %x [%s]",
		r.id, r.log.first(), r.log.committed, idx, term, to, pr)
	pr.BecomeSnapshot(idx)
	r.logger.Debugf("%x paused sending replication messages to %x [%s]", r.id, to, pr)
	r.send(&pb.Message{To: to, Type: pb.MsgSnap, Snapshot: &snap})
	return true
}

// handleInstallSnapshot installs a leader's snapshot if it brings news, and
// answers with the last index the log now holds (or the commit index, if
// the snapshot was ignored), which the leader resumes from.
func (r *raft) handleInstallSnapshot(m *pb.Message) {
	// A MsgSnap always carries a snapshot; a missing one counts as empty.
	var s pb.Snapshot
	if m.Snapshot != nil {
		s = *m.Snapshot
	}
	idx, term := s.Metadata.Index, s.Metadata.Term
	if r.adoptSnapshot(s) {
		r.logger.Infof("%x [commit: %d] restored snapshot [index: %d, term: %d]", r.id, r.log.committed, idx, term)
		r.send(&pb.Message{To: m.From, Type: pb.MsgAppResp, Index: r.log.last()})
		return
	}
	r.logger.Infof("%x [commit: %d] ignored snapshot [index: %d, term: %d]", r.id, r.log.committed, idx, term)
	r.send(&pb.Message{To: m.From, Type: pb.MsgAppResp, Index: r.log.committed})
}

// adoptSnapshot replaces the log and configuration with snapshot s and reports
// whether it did. It declines a snapshot that is not ahead of the commit
// index, one that does not list this node, or one whose configuration is
// invalid; if the log already holds the snapshot's last entry, it only
// commits up to it (the log beyond may be worth keeping).
func (r *raft) adoptSnapshot(s pb.Snapshot) bool {
	if s.Metadata.Index <= r.log.committed {
		return false
	}
	if r.state != StateFollower {
		// Only followers get here. Should another role ever do, moving to a
		// new term as follower is the safe reaction.
		r.logger.Warningf("%x attempted to restore snapshot as leader; should never happen", r.id)
		r.toFollower(r.Term+1, None /* lead */)
		return false
	}
	cs := s.Metadata.ConfState
	if !confStateIncludes(cs, r.id) {
		// Much of the state machine assumes that this node is tracked.
		r.logger.Warningf("%x attempted to restore snapshot but it is not in the ConfState %v; should never happen", r.id, cs)
		return false
	}
	snapID := entryID{term: s.Metadata.Term, index: s.Metadata.Index}
	if r.log.has(snapID) {
		last := r.log.lastID()
		r.logger.Infof("%x [commit: %d, lastindex: %d, lastterm: %d] fast-forwarded commit to snapshot [index: %d, term: %d]",
			r.id, r.log.committed, last.index, last.term, snapID.index, snapID.term)
		r.log.raiseCommit(snapID.index)
		return false
	}
	if r.confChangeIn(r.log.applied+1, r.log.applying+1) {
		// The application holds a configuration change it has not applied
		// yet (asynchronous applying, or a Node stepping messages while its
		// Ready is processed). Installing the snapshot's configuration now
		// would have that change applied on top of it, a configuration it
		// was never meant for, which etcd/raft answers with a panic. The
		// leader sends the snapshot again once this node answers.
		r.logger.Infof("%x [applied: %d, applying: %d] deferred snapshot [index: %d, term: %d]: a configuration change is being applied",
			r.id, r.log.applied, r.log.applying, snapID.index, snapID.term)
		return false
	}
	return r.installSnapshot(s)
}

// installSnapshot makes s the log's base and its configuration the active
// one; after it the log ends at the snapshot's index. A configuration that
// cannot be restored is refused before anything changes.
func (r *raft) installSnapshot(s pb.Snapshot) bool {
	cs := s.Metadata.ConfState
	fresh, cfg, prs, err := r.configFromConfState(cs, s.Metadata.Index)
	if err == nil {
		// A ConfState that names one node twice (a voter that is also a
		// learner) restores into a different configuration than it states;
		// no correct leader sends one, and installing it would trip the
		// equivalence check below.
		probe := fresh
		probe.Config, probe.Progress = cfg, prs
		err = cs.Equivalent(probe.ConfState())
	}
	if err != nil {
		r.logger.Errorf("%x refused snapshot [index: %d, term: %d]: unable to restore config %+v: %v",
			r.id, s.Metadata.Index, s.Metadata.Term, cs, err)
		return false
	}
	r.log.installSnapshot(s)
	r.trk = fresh
	mustMatchConfState(r.logger, cs, r.adoptConfig(cfg, prs))
	last := r.log.lastID()
	r.logger.Infof("%x [commit: %d, lastindex: %d, lastterm: %d] restored snapshot [index: %d, term: %d]",
		r.id, r.log.committed, last.index, last.term, s.Metadata.Index, s.Metadata.Term)
	return true
}

// confStateIncludes reports whether id is a member of cs. LearnersNext need
// not be searched: its members are outgoing voters.
func confStateIncludes(cs pb.ConfState, id uint64) bool {
	return slices.Contains(cs.Voters, id) || slices.Contains(cs.Learners, id) ||
		slices.Contains(cs.VotersOutgoing, id)
}

// handleSnapStatus ends the peer's snapshot wait as the application
// reported it. Either way the peer is probed next, but only after a pause:
// on success its append response (or a heartbeat response) resumes the
// flow; on failure the next heartbeat round does.
func (r *raft) handleSnapStatus(m *pb.Message, pr *tracker.Progress) {
	if pr.State != tracker.StateSnapshot {
		return
	}
	if m.Reject {
		// The snapshot never arrived: probe from Match, not from the
		// snapshot's index. (Clearing it must come before BecomeProbe.)
		pr.PendingSnapshot = 0
		pr.BecomeProbe()
		r.logger.Debugf("%x snapshot failed, resumed sending replication messages to %x [%s]", r.id, m.From, pr)
	} else {
		pr.BecomeProbe()
		r.logger.Debugf("%x snapshot succeeded, resumed sending replication messages to %x [%s]", r.id, m.From, pr)
	}
	pr.MsgAppFlowPaused = true
}

// handleUnreachable reacts to the transport failing to reach a peer: while
// streaming, appends were likely lost, so fall back to probing.
func (r *raft) handleUnreachable(m *pb.Message, pr *tracker.Progress) {
	if pr.State == tracker.StateReplicate {
		pr.BecomeProbe()
	}
	r.logger.Debugf("%x failed to send message to %x because it is unreachable [%s]", r.id, m.From, pr)
}
