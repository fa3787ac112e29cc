package sim

import (
	"encoding/binary"

	"github.com/raftkit/raft"
	pb "github.com/raftkit/raft/raftpb"
)

// Lease safety: a read a ReadOnlyLeaseBased leader answers from its lease
// must not be answered once a leader of a later term exists. That is
// stricter than linearizability, which notices a stale read only when a
// write changed the value in between and a client saw both.
//
// The core does not say how it confirmed a read, so the simulator works it
// out from when the answer comes. A read becomes answerable at the leader
// when it arrives there (a local ReadIndex, or a forwarded MsgReadIndex),
// or, if later, when the leader first commits an entry of its term. A
// lease answer is immediate, so it leaves in the first Ready after that
// step. A heartbeat round needs its heartbeats to leave in one Ready and
// their answers to come back, so its answer leaves two Readys later at the
// earliest. The check therefore judges the reads answered in the first
// Ready after they became answerable as lease reads, decided at that step,
// and the others as round reads, which may legitimately be answered after
// a later leader was elected (a quorum confirmed the leader before that
// election). Reads of ReadOnlySafe runs are not judged.

// readArrival is a read request reaching a leader of term at step.
type readArrival struct {
	term uint64
	step int
}

// leaderSeen is a term's leader as the checks first saw it.
type leaderSeen struct {
	term uint64
	step int
	id   uint64
}

// readIDOf parses the read ID out of a ReadIndex context (see readCtx).
func readIDOf(ctx []byte) (uint64, bool) {
	if len(ctx) != 9 || ctx[0] != 'r' {
		return 0, false
	}
	return binary.BigEndian.Uint64(ctx[1:]), true
}

// noteReadArrival records that the read request ctx is about to reach n,
// if n leads a term now.
func (s *Sim) noteReadArrival(n *node, ctx []byte) {
	if s.readOnly != raft.ReadOnlyLeaseBased {
		return
	}
	id, ok := readIDOf(ctx)
	if !ok {
		return
	}
	bs := n.rn.BasicStatus()
	if bs.RaftState != raft.StateLeader {
		return
	}
	key := [2]uint64{n.id, id}
	s.arrivals[key] = append(s.arrivals[key], readArrival{term: bs.Term, step: s.step})
}

// noteLeaderTerm follows n as leader of term, after each step: the index
// of its term's first entry, and the step at which it first committed it.
func (s *Sim) noteLeaderTerm(n *node, term, commit uint64) {
	if n.leadTerm != term {
		// The step that made n leader appended its empty entry right
		// after the index it counts as its own match.
		n.leadTerm = term
		n.leadFirst = n.rn.Status().Progress[n.id].Match + 1
		n.leadCommitStep = 0
	}
	if n.leadCommitStep == 0 && commit >= n.leadFirst {
		n.leadCommitStep = s.step
		s.check.termCommit[[2]uint64{n.id, term}] = s.step
	}
}

// judgeReads classifies the reads n answers in rd and checks lease safety
// on the lease reads. It runs before n.lastReady moves to this step.
func (s *Sim) judgeReads(n *node, rd *raft.Ready) {
	if s.readOnly != raft.ReadOnlyLeaseBased {
		return
	}
	for _, rs := range rd.ReadStates {
		s.judgeRead(n, rs.RequestCtx)
	}
	for i := range rd.Messages {
		if m := &rd.Messages[i]; m.Type == pb.MsgReadIndexResp && len(m.Entries) == 1 {
			s.judgeRead(n, m.Entries[0].Data)
		}
	}
}

// judgeRead judges one answer of n to the read request ctx.
func (s *Sim) judgeRead(n *node, ctx []byte) {
	id, ok := readIDOf(ctx)
	if !ok {
		return
	}
	key := [2]uint64{n.id, id}
	arrs := s.arrivals[key]
	if len(arrs) == 0 {
		return // answered by another leader and forwarded here
	}
	arr := arrs[0]
	if len(arrs) == 1 {
		delete(s.arrivals, key)
	} else {
		s.arrivals[key] = arrs[1:]
	}
	term, committed := arr.term, s.check.termCommit[[2]uint64{n.id, arr.term}]
	if committed == 0 && n.leadTerm > term {
		// A read that waited for a commit in a term the node never
		// committed in stays queued (as in etcd/raft), and is answered
		// when the node next leads and commits: in that term.
		term, committed = n.leadTerm, s.check.termCommit[[2]uint64{n.id, n.leadTerm}]
	}
	decided := max(arr.step, committed)
	if decided < n.lastReady {
		s.stats.RoundReads++
		return
	}
	s.stats.LeaseReads++
	if later, ok := s.check.laterLeader(term, decided); ok {
		s.fail("lease safety", "node %d answered read %d from its lease as leader of term %d at step %d, but node %d leads term %d since step %d",
			n.id, id, term, decided, later.id, later.term, later.step)
	}
}

// laterLeader returns the first leader seen before step whose term is
// past term.
func (c *checker) laterLeader(term uint64, step int) (leaderSeen, bool) {
	for _, l := range c.leaderSeq {
		if l.step >= step {
			break
		}
		if l.term > term {
			return l, true
		}
	}
	return leaderSeen{}, false
}
