package raft

import (
	"bytes"
	"encoding/binary"

	"github.com/raftkit/raft/quorum"
	pb "github.com/raftkit/raft/raftpb"
)

// The leader lease of ReadOnlyLeaseBased (thesis §6.4.1), made safe
// without clock drift.
//
// The rule. A leader answers a read from its lease only while a quorum of
// its voters (both halves of a joint configuration; learners never count;
// the leader itself counts at once) has acknowledged a heartbeat that the
// leader SENT less than ElectionTick-2 of its own ticks ago, only after it
// committed an entry of its term, and never in a term in which it sent
// MsgTimeoutNow. Otherwise the read goes through a heartbeat round, as a
// safe read: answered later, never refused.
//
// Why it holds. A follower that receives a heartbeat or append of the
// leader restarts its election timer, and refuses votes (ignoresVoteInLease)
// until ElectionTick of its own ticks have passed. It received the message
// after the leader sent it, and its first tick may follow right after, so
// it refuses votes for more than ElectionTick-1 of its tick periods after
// the send. The leader trusts the lease for ElectionTick-2 of its own
// periods: safe while the voter's ticks run at most (ElectionTick-1)/
// (ElectionTick-2) times as fast as the leader's (12.5% faster at
// ElectionTick 10). The send tick travels in the heartbeat's context,
// which followers echo unread.
//
// Invariants the rule relies on, each kept here:
//  1. A follower that honours a lease (honoursLease) never moves to a later
//     term on an answer (late MsgAppResp, MsgHeartbeatResp, vote
//     responses), where it would know no leader and vote at once, and
//     refuses Campaign.
//  2. A node that restarts with a term on disk ignores (pre)votes for its
//     first ElectionTick ticks: it may have acknowledged a heartbeat just
//     before it crashed.
//  3. A voter's heartbeat answers count only once it answered an append
//     of the term: append answers wait for the term to be durable, so a
//     crash then restarts it into invariant 2.
//  4. An append answer cannot say which append it answers; it counts as
//     acknowledging a send at the tick the leader took office.

// officeTick is the leader clock's value when the leader takes office;
// 0 in leaseState.acked means "no append answered in this term".
const officeTick uint64 = 1

// leaseState is a node's lease bookkeeping under ReadOnlyLeaseBased.
type leaseState struct {
	// self is the node's ID; it always acknowledges its own sends.
	self uint64
	// now is the leader's clock: officeTick when it took office, plus one
	// per tick since.
	now uint64
	// acked maps a peer to the latest send tick it acknowledged in this
	// term (see invariants 3 and 4).
	acked map[uint64]uint64
	// revoked says the leader sent MsgTimeoutNow in this term.
	revoked bool
	// quietTicks counts down the ticks after a restart during which
	// (pre)votes are ignored (invariant 2).
	quietTicks int
	// ctx caches the heartbeat context of tick ctxTick and round ctxRound,
	// so that one broadcast per tick allocates at most once. It is handed
	// out with messages, so it is never written after it is made.
	ctx      []byte
	ctxTick  uint64
	ctxRound []byte
}

// leaseBased reports whether reads are served from a lease.
func (r *raft) leaseBased() bool { return r.readOnly.option == ReadOnlyLeaseBased }

// startLease sets up the lease when the node starts from hs: a term on
// disk means the node may have acknowledged a lease before a crash.
// ReadOnlyLeaseBased always runs with CheckQuorum (checkAndFill), which the
// window does not otherwise need.
func (r *raft) startLease(hs pb.HardState) {
	r.lease.self = r.id
	r.lease.acked = make(map[uint64]uint64)
	if r.leaseBased() && hs.Term > 0 {
		r.lease.quietTicks = r.electionTimeout
	}
}

// takeOffice starts the lease bookkeeping of a new leader's term.
func (r *raft) takeOffice() {
	r.lease.now = officeTick
	clear(r.lease.acked)
	r.lease.revoked = false
	r.lease.ctx, r.lease.ctxRound = nil, nil
}

// leaseTick advances the lease clocks by one of the node's ticks.
func (r *raft) leaseTick() {
	r.lease.now++
	if r.lease.quietTicks > 0 {
		r.lease.quietTicks--
	}
}

// revokeLease gives up the lease for the rest of the term: a forced
// election ignores the followers' lease.
func (r *raft) revokeLease() { r.lease.revoked = true }

// AckedIndex implements quorum.AckedIndexer over the acknowledged send
// ticks, so that CommittedIndex is the latest tick a quorum acknowledged.
func (l *leaseState) AckedIndex(id uint64) (idx quorum.Index, found bool) {
	if id == l.self {
		return quorum.Index(l.now), true
	}
	t, ok := l.acked[id]
	return quorum.Index(t), ok && t > 0
}

// leaseValid reports whether the leader may answer a read from its lease
// now. The caller has seen an entry of the term committed.
func (r *raft) leaseValid() bool {
	if r.lease.revoked {
		return false
	}
	acked := uint64(r.trk.Voters.CommittedIndex(&r.lease))
	if acked == 0 || acked > r.lease.now {
		return false
	}
	return r.lease.now-acked < uint64(r.electionTimeout-2)
}

// noteAppendAnswer records that id answered an append in this term.
func (r *raft) noteAppendAnswer(id uint64) {
	if !r.leaseBased() {
		return
	}
	if r.lease.acked[id] == 0 {
		r.lease.acked[id] = officeTick
	}
}

// leaseTickSize is the size of the send tick at the end of a lease-mode
// heartbeat context (after the read round token, if any).
const leaseTickSize = 8

// heartbeatContext is the context of heartbeats for read round round
// (nil for none): in lease mode, the round followed by the send tick.
func (r *raft) heartbeatContext(round []byte) []byte {
	if !r.leaseBased() {
		return round
	}
	l := &r.lease
	if l.ctx != nil && l.ctxTick == l.now && string(l.ctxRound) == string(round) {
		return l.ctx
	}
	ctx := make([]byte, len(round)+leaseTickSize)
	copy(ctx, round)
	binary.BigEndian.PutUint64(ctx[len(round):], l.now)
	l.ctx, l.ctxTick, l.ctxRound = ctx, l.now, round
	return ctx
}

// noteHeartbeatAnswer records the send tick that an echoed lease-mode
// context ctx acknowledges for id, and returns the read round part of ctx.
// A context too short to hold a tick is dropped.
func (r *raft) noteHeartbeatAnswer(id uint64, ctx []byte) []byte {
	if len(ctx) < leaseTickSize {
		return nil
	}
	n := len(ctx) - leaseTickSize
	tick := binary.BigEndian.Uint64(ctx[n:])
	// Invariant 3: no append answered, no lease; and a tick from the
	// future is bogus.
	if prev := r.lease.acked[id]; prev > 0 && tick > prev && tick <= r.lease.now {
		r.lease.acked[id] = tick
	}
	return ctx[:n]
}

// honoursLease reports whether this node keeps a leader lease it may have
// acknowledged: a follower that heard from its leader within the election
// timeout (as ignoresVoteInLease judges), or a node in its quiet window
// after a restart. Only under ReadOnlyLeaseBased.
func (r *raft) honoursLease() bool {
	if !r.leaseBased() {
		return false
	}
	if r.lease.quietTicks > 0 && r.state != StateLeader {
		return true
	}
	return r.state == StateFollower && r.lead != None && r.electionElapsed < r.electionTimeout
}

// ignoresInLease reports (and logs) that m, of a later term, is ignored to
// keep a lease: an answer (invariant 1) while honouring one, or a
// (pre)vote request in the quiet window after a restart (invariant 2). A
// transfer campaign still overrides, as in ignoresVoteInLease.
func (r *raft) ignoresInLease(m *pb.Message) bool {
	switch m.Type {
	case pb.MsgAppResp, pb.MsgHeartbeatResp, pb.MsgVoteResp, pb.MsgPreVoteResp:
		if !r.honoursLease() {
			return false
		}
	case pb.MsgVote, pb.MsgPreVote:
		if !r.quietAfterRestart(m) {
			return false
		}
	default:
		return false
	}
	r.logger.Infof("%x [term: %d] ignored %s from %x [term: %d]: honouring a leader lease",
		r.id, r.Term, m.Type, m.From, m.Term)
	return true
}

// quietAfterRestart reports whether m is a (pre)vote request the node
// ignores in its quiet window after a restart.
func (r *raft) quietAfterRestart(m *pb.Message) bool {
	return r.leaseBased() && r.lease.quietTicks > 0 && !isTransferVote(m)
}

// refusesCampaign reports (and logs) that a MsgHup is refused because the
// node honours a lease. An election timeout never trips it: the timer has
// then run out.
func (r *raft) refusesCampaign() bool {
	if !r.honoursLease() {
		return false
	}
	r.logger.Infof("%x [term: %d] ignoring MsgHup: honouring the lease of leader %x", r.id, r.Term, r.lead)
	return true
}

// isTransferVote reports whether m asks for a vote in a transfer campaign,
// which the leader of the term asked for.
func isTransferVote(m *pb.Message) bool {
	return bytes.Equal(m.Context, []byte(campaignTransfer))
}
