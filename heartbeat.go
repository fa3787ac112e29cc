package raft

import (
	pb "github.com/raftkit/raft/raftpb"
	"github.com/raftkit/raft/tracker"
)

// tickLeader is the leader's tick: a heartbeat round every heartbeat
// timeout, and the once-per-election-timeout duties (see leaderTimeout).
func (r *raft) tickLeader() {
	r.electionElapsed++
	r.heartbeatElapsed++
	r.leaseTick()
	if r.electionElapsed >= r.electionTimeout {
		r.leaderTimeout()
	}
	if r.state == StateLeader && r.heartbeatElapsed >= r.heartbeatTimeout {
		r.heartbeatElapsed = 0
		r.stepLocal(pb.MsgBeat)
	}
}

// leaderTimeout runs once per election timeout on a leader: with
// CheckQuorum it steps down unless a quorum was active, and it abandons a
// leadership transfer that did not finish in time.
func (r *raft) leaderTimeout() {
	r.electionElapsed = 0
	if r.checkQuorum {
		r.stepLocal(pb.MsgCheckQuorum)
	}
	if r.leadTransferee != None && r.state == StateLeader {
		r.cancelTransfer()
	}
}

// stepLocal steps a message of type t from this node to itself.
func (r *raft) stepLocal(t pb.MessageType) {
	if err := r.Step(pb.Message{From: r.id, Type: t}); err != nil {
		r.logger.Debugf("%x stepping its own %s: %v", r.id, t, err)
	}
}

// checkQuorumActive makes the leader step down unless a quorum was heard
// from since the last check, and starts the next round of the check.
func (r *raft) checkQuorumActive() {
	if !r.trk.QuorumActive() {
		r.logger.Warningf("%x stepped down to follower since quorum is not active", r.id)
		r.toFollower(r.Term, None /* lead */)
	}
	// The leader's own flag stays set: it is always active.
	r.order.Visit(func(id uint64, pr *tracker.Progress) {
		if id != r.id {
			pr.RecentActive = false
		}
	})
}

// beat sends a heartbeat to every other member, in ID order. Each carries
// round, the token of a read round whose answers confirm leadership for it
// and every read queued before it (nil: none; lease reads add the send
// tick, see heartbeatContext), and the commit index, capped at what the
// peer is known to hold: a follower must never commit entries it may not
// have, or that conflict with the leader's.
func (r *raft) beat(round []byte) {
	ctx := r.heartbeatContext(round)
	r.order.Visit(func(id uint64, pr *tracker.Progress) {
		if id == r.id {
			return
		}
		commit := min(pr.Match, r.log.committed)
		r.send(&pb.Message{To: id, Type: pb.MsgHeartbeat, Commit: commit, Context: ctx})
		pr.SentCommit(commit)
	})
}

// handleLeaderHeartbeat takes the leader's commit index and answers, echoing the
// context.
func (r *raft) handleLeaderHeartbeat(m *pb.Message) {
	r.log.raiseCommit(m.Commit)
	r.send(&pb.Message{To: m.From, Type: pb.MsgHeartbeatResp, Context: m.Context})
}

// handleHeartbeatResp marks the peer active and resumes its flow: the
// answer shows the peer is reachable, so a paused peer gets an append now
// (an empty one if its window is full, which recovers from lost appends),
// and so does a caught-up probing peer, so that it can return to
// streaming. A peer waiting for a snapshot stays paused. The answer may
// also confirm leadership for pending reads (read_only.go).
func (r *raft) handleHeartbeatResp(m *pb.Message, pr *tracker.Progress) {
	pr.RecentActive = true
	pr.MsgAppFlowPaused = false
	if pr.Match < r.log.last() || pr.State == tracker.StateProbe {
		r.replicate(m.From, pr, true /* sendIfEmpty */)
	}
	r.confirmReadsByHeartbeat(m)
}
