package raft

import (
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"

	"github.com/raftkit/raft/quorum"
	pb "github.com/raftkit/raft/raftpb"
)

// lockedJitter is a random source shared by all the groups of a process.
// Election timeouts only need to differ between nodes, not to be
// unpredictable, but each process must start from a different seed, so the
// seed comes from the operating system.
type lockedJitter struct {
	mu  sync.Mutex
	rng *rand.Rand
}

// newLockedJitter returns a source seeded with seed.
func newLockedJitter(seed uint64) *lockedJitter {
	return &lockedJitter{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

// Intn returns a value in [0, n); n must be positive.
func (j *lockedJitter) Intn(n int) int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.rng.IntN(n)
}

// sharedJitter is the source of every raft that no test overrides.
var sharedJitter = newLockedJitter(osSeed())

// osSeed reads a seed from the operating system's random source.
func osSeed() uint64 {
	var b [8]byte
	if _, err := crand.Read(b[:]); err != nil {
		panic("raft: reading a random seed: " + err.Error())
	}
	return binary.LittleEndian.Uint64(b[:])
}

// drawElectionTimeout draws a new timeout in [electionTimeout,
// 2*electionTimeout).
func (r *raft) drawElectionTimeout() {
	r.randomizedElectionTimeout = r.electionTimeout + r.jitter(r.electionTimeout)
}

// tickElectionClock is the tick of followers and candidates: when the timeout
// runs out without word from a leader, campaign.
func (r *raft) tickElectionClock() {
	r.electionElapsed++
	r.leaseTick()
	if !r.canLead() || r.electionElapsed < r.randomizedElectionTimeout {
		return
	}
	// The timer restarts after the MsgHup, so that the timed-out node no
	// longer honours a lease (see refusesCampaign); a campaign resets it
	// anyway.
	r.stepLocal(pb.MsgHup)
	r.electionElapsed = 0
}

// leaderUnreachable handles the application's report that lead cannot be
// reached (RawNode.SetFastFailover): a follower of lead shortens its election
// timeout to ElectionTick+rank, rank being its place among the voters other
// than lead, in ID order. Distinct ranks keep the followers that heard of
// the loss from campaigning in the same tick and splitting the vote. The
// first campaigns as its lease ends; a voter whose ticks run behind its own
// may still be in the lease then and ignore it, but by the next rank's
// campaign, a tick later, every voter that heard the same last heartbeat
// has counted at least ElectionTick of its own ticks (ticks at equal rates,
// any phase) and grants, the early candidate too: it is left without a
// leader (testdata/fast_failover_phase.txt). So the new leader comes at
// the lease's end or a tick after it.
//
// The shortened timeout lasts until the next reset (a term change or a
// campaign); a heartbeat still restarts the count, so a report about a
// leader that is alive only matters if its heartbeats stop.
func (r *raft) leaderUnreachable(lead uint64) {
	if !r.fastFailover || lead == None || lead != r.lead || !r.canLead() {
		return
	}
	rank := 0
	for _, id := range r.trk.VoterNodes() {
		if id == r.id {
			break
		}
		if id != lead {
			rank++
		}
	}
	// Stay below 2*ElectionTick, the end of the usual range.
	timeout := r.electionTimeout + min(rank, max(0, r.electionTimeout-1))
	if timeout >= r.randomizedElectionTimeout {
		return
	}
	r.logger.Infof("%x [term %d] leader %x reported unreachable; campaigning after %d ticks without word from it (was %d)",
		r.id, r.Term, lead, timeout, r.randomizedElectionTimeout)
	r.randomizedElectionTimeout = timeout
}

// canLead reports whether this node may become leader: it is a voter of
// the active configuration, and no snapshot is pending (its configuration
// would be about to change).
func (r *raft) canLead() bool {
	pr := r.trk.Progress[r.id]
	return pr != nil && !pr.IsLearner && !r.log.snapshotPending()
}

// maybeCampaign starts a campaign of type t unless the node cannot or
// should not.
func (r *raft) maybeCampaign(t CampaignType) {
	switch {
	case r.state == StateLeader:
		r.logger.Debugf("%x ignoring MsgHup because already leader", r.id)
	case !r.canLead():
		r.logger.Warningf("%x is unpromotable and can not campaign", r.id)
	case r.confChangeIn(r.log.applied+1, r.log.committed+1):
		// The configuration to campaign in is not settled yet: a committed
		// change would alter who votes.
		r.logger.Warningf("%x cannot campaign at term %d since there are still pending configuration changes to apply", r.id, r.Term)
	default:
		r.logger.Infof("%x is starting a new election at term %d", r.id, r.Term)
		r.startElection(t)
	}
}

// errFoundConfChange ends the scan of confChangeIn early.
var errFoundConfChange = errors.New("found a conf change")

// confChangeIn reports whether an entry in [lo, hi) is a configuration
// change. It reads the entries in pages no larger than those handed out for
// applying, to bound memory; the range must be in the log.
func (r *raft) confChangeIn(lo, hi uint64) bool {
	if lo >= hi {
		return false
	}
	err := r.log.pages(lo, hi, r.log.pacing.limit, func(ents []pb.Entry) error {
		for i := range ents {
			if isConfChangeEntry(&ents[i]) {
				return errFoundConfChange
			}
		}
		return nil
	})
	if err != nil && err != errFoundConfChange {
		panic(fmt.Sprintf("raft: %x scanning unapplied entries [%d, %d): %v", r.id, lo, hi, err))
	}
	return err == errFoundConfChange
}

// startElection turns the node into a (pre-)candidate and asks every voter for
// its vote, in ID order. The node's own vote travels as a response to
// itself, counted once the vote is durable.
func (r *raft) startElection(t CampaignType) {
	if !r.canLead() {
		// Callers check this; campaigning anyway is harmless but odd.
		r.logger.Warningf("%x is unpromotable; campaign() should have been called", r.id)
	}
	voteMsg, term := r.enterCampaign(t)
	var ctx []byte
	if t == campaignTransfer {
		ctx = []byte(t)
	}
	for _, id := range r.order.Voters() {
		if id == r.id {
			r.send(&pb.Message{To: id, Term: term, Type: voteAnswerType(voteMsg)})
			continue
		}
		last := r.log.lastID()
		r.logger.Infof("%x [logterm: %d, index: %d] sent %s request to %x at term %d",
			r.id, last.term, last.index, voteMsg, id, r.Term)
		r.send(&pb.Message{To: id, Term: term, Type: voteMsg, Index: last.index, LogTerm: last.term, Context: ctx})
	}
}

// enterCampaign switches role for a campaign of type t and returns the
// request type and the term it asks votes for. A trial round asks for the
// next term without entering it.
func (r *raft) enterCampaign(t CampaignType) (pb.MessageType, uint64) {
	if t == campaignPreElection {
		r.toPreCandidate()
		return pb.MsgPreVote, r.Term + 1
	}
	r.toCandidate()
	return pb.MsgVote, r.Term
}

// ignoresVoteInLease reports (and logs) that m is a vote request from a
// later term that this node ignores because it heard from a leader within
// the election timeout (the leader lease of CheckQuorum, thesis §4.2.3). A
// transfer campaign overrides the lease: the leader asked for it.
func (r *raft) ignoresVoteInLease(m *pb.Message) bool {
	if m.Type != pb.MsgVote && m.Type != pb.MsgPreVote {
		return false
	}
	forced := isTransferVote(m)
	inLease := r.checkQuorum && r.lead != None && r.electionElapsed < r.electionTimeout
	if forced || !inLease {
		return false
	}
	last := r.log.lastID()
	r.logger.Infof("%x [logterm: %d, index: %d, vote: %x] ignored %s from %x [logterm: %d, index: %d] at term %d: lease is not expired (remaining ticks: %d)",
		r.id, last.term, last.index, r.Vote, m.Type, m.From, m.LogTerm, m.Index, r.Term, r.electionTimeout-r.electionElapsed)
	return true
}

// handleVoteRequest answers a (pre-)vote request of the current term, or a
// pre-vote request for a later one (thesis §3.6.1, §9.6).
//
// Learners answer too: a learner may have been promoted by a change it has
// not seen yet, and the candidate that knows of the promotion may need its
// vote to win.
func (r *raft) handleVoteRequest(m *pb.Message) {
	candidate := entryID{term: m.LogTerm, index: m.Index}
	if !r.canVoteFor(m) || !r.log.upToDate(candidate) {
		r.logVote(m, "rejected")
		r.send(&pb.Message{To: m.From, Term: r.Term, Type: voteAnswerType(m.Type), Reject: true})
		return
	}
	r.logVote(m, "cast")
	// The response carries the request's term, not ours: for a pre-vote our
	// term may be behind, and the candidate ignores responses from the past.
	r.send(&pb.Message{To: m.From, Term: m.Term, Type: voteAnswerType(m.Type)})
	if m.Type == pb.MsgVote {
		// Only a real vote binds, and it counts as hearing from the group.
		r.electionElapsed = 0
		r.Vote = m.From
	}
}

// canVoteFor reports whether this node is free to grant m, ignoring the
// candidate's log: it already voted for the sender in this term, or it has
// neither voted nor seen a leader in this term, or m is a pre-vote for a
// later term (which commits to nothing).
func (r *raft) canVoteFor(m *pb.Message) bool {
	return r.Vote == m.From ||
		(r.Vote == None && r.lead == None) ||
		(m.Type == pb.MsgPreVote && m.Term > r.Term)
}

// logVote logs the decision on a vote request: "cast" or "rejected".
func (r *raft) logVote(m *pb.Message, decision string) {
	last := r.log.lastID()
	preposition := "from"
	if decision == "cast" {
		preposition = "for"
	}
	r.logger.Infof("%x [logterm: %d, index: %d, vote: %x] %s %s %s %x [logterm: %d, index: %d] at term %d",
		r.id, last.term, last.index, r.Vote, decision, m.Type, preposition, m.From, m.LogTerm, m.Index, r.Term)
}

// ownVoteRespType is the vote response type the current round counts.
func (r *raft) ownVoteRespType() pb.MessageType {
	if r.state == StatePreCandidate {
		return pb.MsgPreVoteResp
	}
	return pb.MsgVoteResp
}

// tallyVote counts a vote response and acts on a decided election: a won
// trial round starts the real election, a won election makes the node
// leader, and a lost one makes it a follower.
func (r *raft) tallyVote(m *pb.Message) {
	if m.Reject {
		r.logger.Infof("%x received %s rejection from %x at term %d", r.id, m.Type, m.From, r.Term)
	} else {
		r.logger.Infof("%x received %s from %x at term %d", r.id, m.Type, m.From, r.Term)
	}
	r.trk.RecordVote(m.From, !m.Reject)
	granted, rejected, res := r.trk.TallyVotes()
	r.logger.Infof("%x has received %d %s votes and %d vote rejections", r.id, granted, m.Type, rejected)
	switch res {
	case quorum.VoteWon:
		if r.state == StatePreCandidate {
			r.startElection(campaignElection)
			return
		}
		r.toLeader()
		r.replicateAll()
	case quorum.VoteLost:
		// A pre-vote response may carry a later term; stay in ours.
		r.toFollower(r.Term, None /* lead */)
	}
}
