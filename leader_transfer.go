package raft

import (
	pb "github.com/raftkit/raft/raftpb"
	"github.com/raftkit/raft/tracker"
)

// handleTransferLeader starts moving leadership to m.From (thesis §3.10):
// once the target's log is caught up, it is told to campaign at once with
// MsgTimeoutNow. Meanwhile proposals are refused, and the transfer is
// abandoned if it has not finished within an election timeout.
func (r *raft) handleTransferLeader(m *pb.Message, pr *tracker.Progress) {
	if pr.IsLearner {
		r.logger.Debugf("%x is learner. Ignored transferring leadership", r.id)
		return
	}
	target := m.From
	if prev := r.leadTransferee; prev != None {
		if prev == target {
			r.logger.Infof("%x [term %d] transfer leadership to %x is in progress, ignores request to same node %x",
				r.id, r.Term, target, target)
			return
		}
		r.cancelTransfer()
		r.logger.Infof("%x [term %d] abort previous transferring leadership to %x", r.id, r.Term, prev)
	}
	if target == r.id {
		r.logger.Debugf("%x is already leader. Ignored transferring leadership to self", r.id)
		return
	}
	r.logger.Infof("%x [term %d] starts to transfer leadership to %x", r.id, r.Term, target)
	// The transfer gets one election timeout from now.
	r.electionElapsed = 0
	r.leadTransferee = target
	if pr.Match == r.log.last() {
		r.hurryTransferee(target)
		r.logger.Infof("%x sends MsgTimeoutNow to %x immediately as %x already has up-to-date log", r.id, target, target)
		return
	}
	r.replicate(target, pr, true /* sendIfEmpty */)
}

// hurryTransferee tells to to campaign right away.
func (r *raft) hurryTransferee(to uint64) {
	r.revokeLease()
	r.send(&pb.Message{To: to, Type: pb.MsgTimeoutNow})
}

// cancelTransfer forgets any ongoing transfer.
func (r *raft) cancelTransfer() {
	r.leadTransferee = None
}

// handleTimeoutNow campaigns on the leader's request. A transfer campaign
// skips PreVote: the leader is cooperating, so there is no partition to
// guard against.
func (r *raft) handleTimeoutNow(m *pb.Message) {
	r.logger.Infof("%x [term %d] received MsgTimeoutNow from %x and starts an election to get leadership.", r.id, r.Term, m.From)
	r.maybeCampaign(campaignTransfer)
}
