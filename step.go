package raft

import pb "github.com/raftkit/raft/raftpb"

// A message goes through Step in this order: validation (validate.go), the
// comparison of its term with ours, the messages every role handles alike,
// and then the step of the node's role. The three role steps follow, side
// by side, each a table from message type to handler; the handlers live
// with their flow (replication.go, heartbeat.go, election.go, read_only.go,
// snapshot.go, leader_transfer.go, apply.go).

// Step advances the state machine by one message: a peer's message, or a
// local one (MsgHup, MsgBeat, MsgProp, storage responses, ...). Malformed
// messages are dropped and counted. It returns ErrProposalDropped for
// refused proposals; every other input is absorbed.
func (r *raft) Step(m pb.Message) error {
	return r.stepMsg(&m)
}

// stepMsg is Step on a message the caller keeps. Messages are ~200 bytes
// with pointers, and the step chain is several calls deep, so they go down
// it by pointer. Nothing below keeps the pointer or writes through it: a
// handler that stores a message, or sends a changed one, copies it first.
func (r *raft) stepMsg(m *pb.Message) error {
	if reason := r.malformed(m); reason != "" {
		r.droppedMsgs++
		r.logger.Warningf("%x [term: %d] dropped malformed %s from %x [term: %d]: %s",
			r.id, r.Term, m.Type, m.From, m.Term, reason)
		if m.Type == pb.MsgProp {
			return ErrProposalDropped
		}
		return nil
	}
	switch {
	case m.Term == 0:
		// Local messages and forwarded proposals and reads carry no term.
	case m.Term > r.Term:
		if !r.stepNewerTerm(m) {
			return nil
		}
	case m.Term < r.Term:
		r.stepOlderTerm(m)
		return nil
	}
	return r.stepCurrentTerm(m)
}

// stepNewerTerm reacts to a message from a later term, usually by following
// that term, and reports whether the message should then be handled.
func (r *raft) stepNewerTerm(m *pb.Message) bool {
	if r.ignoresVoteInLease(m) || r.ignoresInLease(m) {
		return false
	}
	switch {
	case m.Type == pb.MsgPreVote:
		// A trial vote request never moves the term.
	case m.Type == pb.MsgPreVoteResp && !m.Reject:
		// A granted trial vote carries the term we would campaign in; the
		// term moves only if the trial round is won.
	default:
		r.logger.Infof("%x [term: %d] received a %s message with higher term from %x [term: %d]",
			r.id, r.Term, m.Type, m.From, m.Term)
		r.toFollower(m.Term, leaderOf(m))
	}
	return true
}

// leaderOf is the sender if m is something only a leader of m.Term sends,
// else None.
func leaderOf(m *pb.Message) uint64 {
	switch m.Type {
	case pb.MsgApp, pb.MsgHeartbeat, pb.MsgSnap:
		return m.From
	}
	return None
}

// stepOlderTerm handles a message from an earlier term. Most are stale and
// ignored; a few still deserve an answer.
func (r *raft) stepOlderTerm(m *pb.Message) {
	switch {
	case (r.checkQuorum || r.preVote) && (m.Type == pb.MsgHeartbeat || m.Type == pb.MsgApp):
		// A leader of an older term is talking to us. Either its messages
		// were delayed, or we moved on while partitioned and now cannot win
		// an election (CheckQuorum and PreVote keep our votes from raising
		// terms). Answering with our term makes that leader step down and
		// lets the group move on to our term.
		r.send(&pb.Message{To: m.From, Type: pb.MsgAppResp})
	case m.Type == pb.MsgPreVote:
		// Rejecting, rather than ignoring, keeps a cluster that mixes PreVote
		// with older candidates from deadlocking.
		r.logVote(m, "rejected")
		r.send(&pb.Message{To: m.From, Term: r.Term, Type: pb.MsgPreVoteResp, Reject: true})
	case m.Type == pb.MsgVote:
		// The paper's rule, which etcd/raft skips: reject with our term, so
		// that the candidate catches up to it. Ignoring the request can stall
		// the group for good: a voter whose log lags behind a configuration
		// change may have raised its term campaigning among the members of
		// its old configuration, never talks to the new ones, and ignores
		// their lower-term requests, while a joint configuration needs its
		// vote (simulator seed 7955, kv workload; SAFETY.md item 8).
		r.logVote(m, "rejected")
		r.send(&pb.Message{To: m.From, Term: r.Term, Type: pb.MsgVoteResp, Reject: true})
	case m.Type == pb.MsgStorageAppendResp:
		r.handleStaleStorageAppendResp(m)
	default:
		r.logger.Infof("%x [term: %d] ignored a %s message with lower term from %x [term: %d]",
			r.id, r.Term, m.Type, m.From, m.Term)
	}
}

// stepCurrentTerm handles a message whose term is this node's (or none):
// the messages every role treats alike here, the rest by role.
func (r *raft) stepCurrentTerm(m *pb.Message) error {
	switch m.Type {
	case pb.MsgHup:
		if r.refusesCampaign() {
			return nil
		}
		if r.preVote {
			r.maybeCampaign(campaignPreElection)
		} else {
			r.maybeCampaign(campaignElection)
		}
	case pb.MsgStorageAppendResp:
		r.handleStorageAppendResp(m)
	case pb.MsgStorageApplyResp:
		r.handleStorageApplyResp(m)
	case pb.MsgVote, pb.MsgPreVote:
		if !r.quietAfterRestart(m) {
			r.handleVoteRequest(m)
		}
	default:
		return r.stepByRole(m)
	}
	return nil
}

// stepByRole hands m to the current role's step. A switch rather than a
// function-valued field: through an indirect call the compiler must assume
// the message pointer escapes, and every stepped message would then be
// moved to the heap.
func (r *raft) stepByRole(m *pb.Message) error {
	switch r.state {
	case StateLeader:
		return leaderStep(r, m)
	case StateFollower:
		return followerStep(r, m)
	default:
		return candidateStep(r, m)
	}
}

// leaderStep is the leader's step.
func leaderStep(r *raft, m *pb.Message) error {
	switch m.Type {
	case pb.MsgProp:
		return r.handlePropose(m)
	case pb.MsgBeat:
		// The latest pending read round rides along, so that the answers
		// also confirm it.
		r.beat(r.readOnly.lastPendingRound())
	case pb.MsgCheckQuorum:
		r.checkQuorumActive()
	case pb.MsgReadIndex:
		r.handleReadIndex(m)
	case pb.MsgForgetLeader:
		// A leader has no leader to forget.
	default:
		r.stepLeaderAboutPeer(m)
	}
	return nil
}

// stepLeaderAboutPeer handles the leader's messages that concern one
// member, m.From; messages about non-members are ignored.
func (r *raft) stepLeaderAboutPeer(m *pb.Message) {
	pr := r.order.Progress(m.From)
	if pr == nil {
		r.logger.Debugf("%x no progress available for %x", r.id, m.From)
		return
	}
	switch m.Type {
	case pb.MsgAppResp:
		r.handleAppendResp(m, pr)
	case pb.MsgHeartbeatResp:
		r.handleHeartbeatResp(m, pr)
	case pb.MsgSnapStatus:
		r.handleSnapStatus(m, pr)
	case pb.MsgUnreachable:
		r.handleUnreachable(m, pr)
	case pb.MsgTransferLeader:
		r.handleTransferLeader(m, pr)
	}
}

// candidateStep is the step of both candidate roles. Each counts only the
// responses of its own round: a candidate may still receive pre-vote
// responses of the round that made it one.
func candidateStep(r *raft, m *pb.Message) error {
	switch m.Type {
	case pb.MsgProp:
		r.logger.Infof("%x no leader at term %d; dropping proposal", r.id, r.Term)
		return ErrProposalDropped
	case pb.MsgApp, pb.MsgHeartbeat, pb.MsgSnap:
		// A leader won this term (m.Term == r.Term here): follow it.
		r.toFollower(m.Term, m.From)
		r.stepFromLeader(m)
	case r.ownVoteRespType():
		r.tallyVote(m)
	case pb.MsgTimeoutNow:
		r.logger.Debugf("%x [term %d state %v] ignored MsgTimeoutNow from %x", r.id, r.Term, r.state, m.From)
	}
	return nil
}

// followerStep is the follower's step. Requests meant for the leader are
// forwarded to it when it is known.
func followerStep(r *raft, m *pb.Message) error {
	switch m.Type {
	case pb.MsgProp:
		return r.forwardProposal(m)
	case pb.MsgApp, pb.MsgHeartbeat, pb.MsgSnap:
		// Word from the leader: the election timer restarts.
		r.electionElapsed = 0
		r.lead = m.From
		r.stepFromLeader(m)
	case pb.MsgTransferLeader:
		r.forwardToLeader(m, "leader transfer msg")
	case pb.MsgForgetLeader:
		r.forgetLeader()
	case pb.MsgTimeoutNow:
		r.handleTimeoutNow(m)
	case pb.MsgReadIndex:
		r.forwardToLeader(m, "index reading msg")
	case pb.MsgReadIndexResp:
		r.handleReadIndexResp(m)
	case pb.MsgUnreachable:
		r.leaderUnreachable(m.From)
	}
	return nil
}

// stepFromLeader handles what only the current leader sends.
func (r *raft) stepFromLeader(m *pb.Message) {
	switch m.Type {
	case pb.MsgApp:
		r.handleAppend(m)
	case pb.MsgHeartbeat:
		r.handleLeaderHeartbeat(m)
	case pb.MsgSnap:
		r.handleInstallSnapshot(m)
	}
}

// forwardProposal passes a proposal to the leader, or refuses it.
func (r *raft) forwardProposal(m *pb.Message) error {
	if r.lead == None {
		r.logger.Infof("%x no leader at term %d; dropping proposal", r.id, r.Term)
		return ErrProposalDropped
	}
	if r.disableProposalForwarding {
		r.logger.Infof("%x not forwarding to leader %x at term %d; dropping proposal", r.id, r.lead, r.Term)
		return ErrProposalDropped
	}
	fwd := *m
	fwd.To = r.lead
	r.send(&fwd)
	return nil
}

// forwardToLeader passes a request (what names it in the log) to the
// leader, or drops it when no leader is known.
func (r *raft) forwardToLeader(m *pb.Message, what string) {
	if r.lead == None {
		r.logger.Infof("%x no leader at term %d; dropping %s", r.id, r.Term, what)
		return
	}
	fwd := *m
	fwd.To = r.lead
	// A transfer request relayed once already carries a term; send sets it
	// afresh.
	if fwd.Type == pb.MsgTransferLeader {
		fwd.Term = 0
	}
	r.send(&fwd)
}

// forgetLeader drops the follower's knowledge of the leader, so that it
// grants votes again before the election timeout (thesis §4.2.3's lease
// aside). Under lease-based reads that would break the lease's guarantee,
// so it is refused.
func (r *raft) forgetLeader() {
	if r.readOnly.option == ReadOnlyLeaseBased {
		r.logger.Error("ignoring MsgForgetLeader due to ReadOnlyLeaseBased")
		return
	}
	if r.lead != None {
		r.logger.Infof("%x forgetting leader %x at term %d", r.id, r.lead, r.Term)
		r.lead = None
	}
}
