package raft

// Tests tied to the rules of §5 of the Raft paper ("In Search of an
// Understandable Consensus Algorithm", Ongaro and Ousterhout, 2014). Each
// test quotes the sentence it checks.

import (
	"testing"

	pb "github.com/raftkit/raft/raftpb"
)

// §5.1: "If a server receives a request with a stale term number, it
// rejects the request."
func TestPaperStaleTermRequestRejected(t *testing.T) {
	nw := newTestNet(t, 3, nil, nil)
	nw.campaign(1)
	nw.campaign(2) // term 2
	r := nw.node(3).r()
	before := r.log.last()
	_ = r.Step(pb.Message{From: 1, To: 3, Type: pb.MsgApp, Term: 1, Index: before, LogTerm: 2,
		Entries: []pb.Entry{{Index: before + 1, Term: 1}}})
	if r.log.last() != before || r.Term != 2 {
		t.Fatalf("stale append accepted: last %d term %d", r.log.last(), r.Term)
	}
}

// §5.1: "If a candidate or leader discovers that its term is out of date,
// it immediately reverts to follower state."
func TestPaperLeaderRevertsOnNewerTerm(t *testing.T) {
	nw := newTestNet(t, 3, nil, nil)
	nw.campaign(1)
	r := nw.node(1).r()
	_ = r.Step(pb.Message{From: 2, To: 1, Type: pb.MsgHeartbeatResp, Term: 7})
	if r.state != StateFollower || r.Term != 7 {
		t.Fatalf("state %s term %d, want follower at 7", r.state, r.Term)
	}
}

// §5.2: "Each server will vote for at most one candidate in a given term,
// on a first-come-first-served basis."
func TestPaperOneVotePerTerm(t *testing.T) {
	r := newTestNet(t, 3, nil, nil).node(1).r()
	_ = r.Step(pb.Message{From: 2, To: 1, Type: pb.MsgVote, Term: 1, LogTerm: 1, Index: 1})
	_ = r.Step(pb.Message{From: 3, To: 1, Type: pb.MsgVote, Term: 1, LogTerm: 1, Index: 1})
	var granted []uint64
	// A RawNode's raft keeps its acknowledgements to peers in msgs (see
	// acksInOutbox).
	for _, m := range append(r.msgs[:len(r.msgs):len(r.msgs)], r.msgsAfterAppend...) {
		if m.Type == pb.MsgVoteResp && !m.Reject {
			granted = append(granted, m.To)
		}
	}
	if len(granted) != 1 || granted[0] != 2 || r.Vote != 2 {
		t.Fatalf("granted to %v, vote %d; want only 2", granted, r.Vote)
	}
}

// §5.2: "A candidate wins an election if it receives votes from a majority
// of the servers in the full cluster for the same term." and "While
// waiting for votes, a candidate may receive an AppendEntries RPC from
// another server claiming to be leader. If the leader's term ... is at
// least as large as the candidate's current term, then the candidate
// recognizes the leader as legitimate and returns to follower state."
func TestPaperCandidateWinsMajorityOrYieldsToLeader(t *testing.T) {
	nw := newTestNet(t, 5, nil, nil)
	nw.isolate(4)
	nw.isolate(5)
	nw.campaign(1) // 1, 2, 3: a majority of five
	nw.mustLead(1)

	r := nw.node(4).r()
	r.toCandidate()
	_ = r.Step(pb.Message{From: 1, To: 4, Type: pb.MsgApp, Term: r.Term, Index: 1, LogTerm: 1})
	if r.state != StateFollower || r.lead != 1 {
		t.Fatalf("candidate is %s with lead %d after a leader's append", r.state, r.lead)
	}
}

// §5.2: "Raft uses randomized election timeouts to ensure that split
// votes are rare ... election timeouts are chosen randomly from a fixed
// interval."
//
// The nodes draw from raft's own source, the one every node uses unless a
// test overrides it (the test net gives each node a seeded source of its
// own, so it cannot show this); it is seeded here only so that the test is
// deterministic. Each node draws again whenever it starts a new term.
func TestPaperElectionTimeoutsAreRandomized(t *testing.T) {
	saved := sharedJitter
	sharedJitter = newLockedJitter(5)
	defer func() { sharedJitter = saved }()

	const nodes, terms = 5, 4
	first := map[int]bool{}
	for id := uint64(1); id <= nodes; id++ {
		s := NewMemoryStorage()
		snap := pb.Snapshot{Metadata: pb.SnapshotMetadata{Index: 1, Term: 1, ConfState: pb.ConfState{Voters: []uint64{1, 2, 3, 4, 5}}}}
		if err := s.ApplySnapshot(snap); err != nil {
			t.Fatal(err)
		}
		r := raftFromConfig(netConfig(id, s))
		first[r.randomizedElectionTimeout] = true
		mine := map[int]bool{}
		for term := 0; term < terms; term++ {
			to := r.randomizedElectionTimeout
			if to < r.electionTimeout || to >= 2*r.electionTimeout {
				t.Fatalf("node %d drew %d, outside [%d, %d)", id, to, r.electionTimeout, 2*r.electionTimeout)
			}
			mine[to] = true
			r.toCandidate()
		}
		if len(mine) < 2 {
			t.Fatalf("node %d drew the same timeout in all %d terms: %v", id, terms, mine)
		}
	}
	if len(first) < 2 {
		t.Fatalf("all %d nodes started with the same timeout: %v", nodes, first)
	}
}

// §5.3: "If a follower's log is inconsistent with the leader's, the
// AppendEntries consistency check will fail in the next AppendEntries RPC.
// After a rejection, the leader decrements nextIndex and retries ...
// Eventually nextIndex will reach a point where the leader and follower
// logs match."
func TestPaperLeaderRepairsInconsistentFollower(t *testing.T) {
	nw := newTestNet(t, 3, nil, nil)
	nw.campaign(1)
	nw.isolate(1)
	// The old leader appends entries nobody else sees.
	for i := 0; i < 3; i++ {
		_ = nw.node(1).rn.Propose([]byte("lost"))
	}
	nw.settle()
	nw.campaign(2)
	_ = nw.propose(2, "kept")
	nw.heal()
	nw.tick(2, 1)
	want := nw.node(2).r().log.everything()
	got := nw.node(1).r().log.everything()
	if len(got) != len(want) {
		t.Fatalf("repaired log has %d entries, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i].Term != want[i].Term || string(got[i].Data) != string(want[i].Data) {
			t.Fatalf("entry %d: %v, want %v", i, got[i], want[i])
		}
	}
}

// §5.3: "A log entry is committed once the leader that created the entry
// has replicated it on a majority of the servers."
func TestPaperCommitOnMajority(t *testing.T) {
	nw := newTestNet(t, 5, nil, nil)
	nw.campaign(1)
	nw.isolate(4)
	nw.isolate(5)
	_ = nw.propose(1, "a")
	if c := nw.node(1).r().log.committed; c != 3 {
		t.Fatalf("commit %d with a majority up, want 3", c)
	}
	nw.isolate(3)
	_ = nw.propose(1, "b")
	if c := nw.node(1).r().log.committed; c != 3 {
		t.Fatalf("commit %d without a majority, want 3", c)
	}
}

// §5.4.2: "Raft never commits log entries from previous terms by counting
// replicas. Only log entries from the leader's current term are committed
// by counting replicas."
func TestPaperNoCommitOfOldTermByCounting(t *testing.T) {
	nw := newTestNet(t, 3, nil, nil)
	nw.campaign(1)
	nw.isolate(2)
	nw.isolate(3)
	_ = nw.propose(1, "old") // index 3, term 1, only on node 1
	nw.heal()
	// Node 1 becomes leader of term 2 but its term-2 entry gets no
	// acknowledgement; node 2 receives (and acknowledges) the old entry.
	nw.dropType[pb.MsgAppResp] = true
	r := nw.node(1).r()
	r.toFollower(r.Term, None /* lead */)
	nw.campaign(1)
	nw.mustLead(1)
	pr := r.trk.Progress[2]
	pr.MaybeUpdate(3) // a majority (1 and 2) holds index 3 of term 1
	if r.advanceCommit() {
		t.Fatalf("committed index %d of an earlier term by counting", r.log.committed)
	}
	pr.MaybeUpdate(4) // and now the leader's own entry
	if !r.advanceCommit() || r.log.committed != 4 {
		t.Fatalf("commit %d, want 4 once an entry of the current term is replicated", r.log.committed)
	}
}

// §5.4.1: "the voter denies its vote if its own log is more up-to-date
// than that of the candidate."
func TestPaperVoteDeniedToLessUpToDateCandidate(t *testing.T) {
	nw := newTestNet(t, 3, nil, nil)
	nw.campaign(1)
	_ = nw.propose(1, "a")
	r := nw.node(2).r()
	last := r.log.lastID()
	_ = r.Step(pb.Message{From: 3, To: 2, Type: pb.MsgVote, Term: 5, LogTerm: last.term, Index: last.index - 1})
	if r.Vote == 3 {
		t.Fatal("voted for a candidate with a shorter log")
	}
	_ = r.Step(pb.Message{From: 3, To: 2, Type: pb.MsgVote, Term: 5, LogTerm: last.term, Index: last.index})
	if r.Vote != 3 {
		t.Fatalf("vote %d for an up-to-date candidate, want 3", r.Vote)
	}
}
