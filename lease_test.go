package raft

import (
	"testing"

	pb "github.com/raftkit/raft/raftpb"
)

// leaseNet is a testNet of voters (and learners) under ReadOnlyLeaseBased
// with node 1 elected.
func leaseNet(t *testing.T, voters int, learners []uint64) *testNet {
	nw := newTestNet(t, voters, learners, func(c *Config) { c.CheckQuorum, c.ReadOnlyOption = true, ReadOnlyLeaseBased })
	nw.campaign(1)
	nw.mustLead(1)
	return nw
}

// leaseRead asks node id for a read and reports whether it was answered
// from the lease: at once, with no message exchanged.
func leaseRead(nw *testNet, id uint64, ctx string) bool {
	r := nw.node(id).r()
	before := len(r.readStates)
	nw.node(id).rn.ReadIndex([]byte(ctx))
	return len(r.readStates) > before
}

// A partitioned leader stops answering from its lease ElectionTick-2 of
// its ticks after the last heartbeat a quorum acknowledged; the read then
// waits for a heartbeat round and is answered once the leader is heard
// again, never refused.
func TestLeaseExpiresAfterSentHeartbeat(t *testing.T) {
	nw := leaseNet(t, 3, nil)
	nw.tick(1, 3) // heartbeats sent at tick 2..4 and acknowledged
	nw.isolate(1)
	for i := 0; i < 10-2-1; i++ {
		nw.tick(1, 1)
		if !leaseRead(nw, 1, "in lease") {
			t.Fatalf("read %d ticks after the last acknowledged heartbeat not served from the lease", i+1)
		}
	}
	nw.tick(1, 1)
	if leaseRead(nw, 1, "expired") {
		t.Fatal("read served from a lease whose heartbeat was sent ElectionTick-2 ticks ago")
	}
	n := nw.node(1)
	got := len(n.readStates)
	nw.heal()
	nw.tick(1, 1)
	if len(n.readStates) != got+1 || string(n.readStates[got].RequestCtx) != "expired" {
		t.Fatalf("read after the lease expired not answered through a round: %v", n.readStates[got:])
	}
	if !leaseRead(nw, 1, "renewed") {
		t.Fatal("lease not renewed by acknowledged heartbeats")
	}
}

// Append answers renew nothing: they count as acknowledging a send at the
// tick the leader took office, which allows reads right after an election
// and no longer.
func TestLeaseAppendAnswersCountAsOfOffice(t *testing.T) {
	nw := leaseNet(t, 3, nil)
	if !leaseRead(nw, 1, "after election") {
		t.Fatal("no lease read right after the election")
	}
	nw.dropType[pb.MsgHeartbeatResp] = true
	for i := 0; i < 10; i++ {
		if err := nw.propose(1, "x"); err != nil {
			t.Fatal(err)
		}
		nw.tick(1, 1)
	}
	if leaseRead(nw, 1, "late") {
		t.Fatal("append answers renewed the lease")
	}
}

// Learners do not count towards the lease.
func TestLeaseIgnoresLearners(t *testing.T) {
	nw := leaseNet(t, 3, []uint64{4, 5})
	nw.tick(1, 2)
	nw.cut[[2]uint64{1, 2}], nw.cut[[2]uint64{1, 3}] = true, true
	nw.tick(1, 10)
	if leaseRead(nw, 1, "learners only") {
		t.Fatal("lease held by the answers of learners")
	}
}

// A voter's heartbeat answers count only once it answered an append in
// the term (its term is durable then).
func TestLeaseNeedsAppendAnswer(t *testing.T) {
	nw := newTestNet(t, 3, nil, func(c *Config) { c.CheckQuorum, c.ReadOnlyOption = true, ReadOnlyLeaseBased })
	nw.drop = func(m pb.Message) bool { return m.Type == pb.MsgAppResp && m.From == 3 }
	nw.campaign(1)
	nw.mustLead(1)
	nw.tick(1, 2)
	nw.cut[[2]uint64{1, 2}] = true // 2 answered appends; now only 3 answers, heartbeats only
	nw.tick(1, 10)
	if leaseRead(nw, 1, "heartbeats only") {
		t.Fatal("lease held by heartbeat answers of a voter that answered no append")
	}
}

// A leader that sent MsgTimeoutNow serves no lease reads for the rest of
// its term, even once the transfer is abandoned.
func TestLeaseRevokedByTimeoutNow(t *testing.T) {
	nw := leaseNet(t, 3, nil)
	nw.dropType[pb.MsgTimeoutNow] = true
	_ = nw.node(1).rn.Step(pb.Message{From: 2, To: 1, Type: pb.MsgTransferLeader})
	nw.settle()
	nw.tick(1, 11) // the transfer is abandoned
	nw.mustLead(1)
	if nw.node(1).r().leadTransferee != None {
		t.Fatal("transfer not abandoned")
	}
	if leaseRead(nw, 1, "after transfer") {
		t.Fatal("lease read in a term in which MsgTimeoutNow was sent")
	}
	nw.settle()
	if rs := nw.node(1).readStates; len(rs) == 0 || string(rs[len(rs)-1].RequestCtx) != "after transfer" {
		t.Fatalf("read not answered through a round: %v", rs)
	}
}

// A leader serves no read before it committed an entry of its term, even
// if its lease would be valid.
func TestLeaseWaitsForCommitInTerm(t *testing.T) {
	nw := leaseNet(t, 3, nil)
	nw.isolate(1)
	r := nw.node(1).r()
	r.toFollower(r.Term, None /* lead */)
	r.toCandidate()
	r.toLeader()
	// Append answers of the term that acknowledge old entries only.
	for _, id := range []uint64{2, 3} {
		_ = r.Step(pb.Message{From: id, To: 1, Type: pb.MsgAppResp, Term: r.Term, Index: 1})
	}
	if !r.leaseValid() {
		t.Fatal("lease not valid after append answers")
	}
	if leaseRead(nw, 1, "early") {
		t.Fatal("lease read before an entry of the term committed")
	}
}

// A follower honouring the lease ignores late answers of a later term; a
// leader steps down on them; without lease reads the follower moves on.
func TestLeaseIgnoresLateAnswers(t *testing.T) {
	for _, typ := range []pb.MessageType{pb.MsgAppResp, pb.MsgHeartbeatResp, pb.MsgVoteResp, pb.MsgPreVoteResp} {
		nw := leaseNet(t, 3, nil)
		f := nw.node(2).r()
		_ = f.Step(pb.Message{From: 3, To: 2, Type: typ, Term: 5, Reject: true})
		if f.Term != 1 || f.lead != 1 {
			t.Fatalf("%s: follower moved to term %d lead %d", typ, f.Term, f.lead)
		}
		l := nw.node(1).r()
		_ = l.Step(pb.Message{From: 3, To: 1, Type: typ, Term: 5, Reject: true})
		if l.state == StateLeader {
			t.Fatalf("%s: leader did not step down", typ)
		}
	}
	nw := newTestNet(t, 3, nil, func(c *Config) { c.CheckQuorum = true })
	nw.campaign(1)
	f := nw.node(2).r()
	_ = f.Step(pb.Message{From: 3, To: 2, Type: pb.MsgAppResp, Term: 5})
	if f.Term != 5 {
		t.Fatalf("ReadOnlySafe follower stayed at term %d", f.Term)
	}
}

// Campaign is refused on a follower that honours the lease, allowed once
// the leader is silent for an election timeout, and allowed under
// ReadOnlySafe.
func TestLeaseRefusesCampaign(t *testing.T) {
	nw := leaseNet(t, 3, nil)
	if err := nw.node(2).rn.Campaign(); err != nil {
		t.Fatal(err)
	}
	if r := nw.node(2).r(); r.state != StateFollower || r.Term != 1 {
		t.Fatalf("follower in lease campaigned: %s term %d", r.state, r.Term)
	}
	nw.isolate(1)
	for i := 0; i < 30; i++ { // the election timers run out and followers campaign
		nw.node(2).rn.Tick()
		nw.node(3).rn.Tick()
		nw.settle()
	}
	if l := nw.leader(); l != 2 && l != 3 {
		t.Fatalf("leader %d after the lease expired, want 2 or 3", l)
	}
	safe := newTestNet(t, 3, nil, func(c *Config) { c.CheckQuorum = true })
	safe.campaign(1)
	safe.campaign(2)
	if r := safe.node(2).r(); r.Term != 2 {
		t.Fatalf("ReadOnlySafe follower did not campaign: term %d", r.Term)
	}
}

// A node restarted with a term on disk ignores (pre)votes for its first
// ElectionTick ticks under ReadOnlyLeaseBased, and only then.
func TestLeaseQuietAfterRestart(t *testing.T) {
	for _, tc := range []struct {
		lease bool
		term  uint64
		quiet bool
	}{{true, 1, true}, {true, 0, false}, {false, 1, false}} {
		s := NewMemoryStorage()
		_ = s.ApplySnapshot(pb.Snapshot{Metadata: pb.SnapshotMetadata{Index: 1, Term: 1, ConfState: pb.ConfState{Voters: []uint64{1, 2, 3}}}})
		if tc.term > 0 {
			_ = s.SetHardState(pb.HardState{Term: tc.term, Commit: 1})
		}
		c := netConfig(1, s)
		c.CheckQuorum = true
		if tc.lease {
			c.ReadOnlyOption = ReadOnlyLeaseBased
		}
		r := raftFromConfig(c)
		// The longest timeout, so that the node does not campaign itself
		// within the ElectionTick ticks below (with a drawn one it did, one
		// run in ten, and then refused the vote as a candidate).
		r.useJitter(func(n int) int { return n - 1 })
		for _, typ := range []pb.MessageType{pb.MsgPreVote, pb.MsgVote} {
			r.msgsAfterAppend = nil
			_ = r.Step(pb.Message{From: 2, To: 1, Type: typ, Term: 2, LogTerm: 1, Index: 1})
			granted := len(r.msgsAfterAppend) == 1 && !r.msgsAfterAppend[0].Reject
			if granted == tc.quiet {
				t.Fatalf("%+v: %s granted=%v", tc, typ, granted)
			}
		}
		if !tc.quiet {
			continue
		}
		for i := 0; i < c.ElectionTick; i++ {
			r.tick()
		}
		r.msgsAfterAppend = nil
		_ = r.Step(pb.Message{From: 2, To: 1, Type: pb.MsgVote, Term: 2, LogTerm: 1, Index: 1})
		if len(r.msgsAfterAppend) != 1 || r.msgsAfterAppend[0].Reject {
			t.Fatalf("vote not granted after the quiet window: %v", r.msgsAfterAppend)
		}
	}
}

// The ElectionTick-2 margin tolerates voters whose ticks run up to
// (ElectionTick-1)/(ElectionTick-2) as fast as the leader's: with voters
// ticked 9 times per 8 leader ticks (ElectionTick 10), at every phase, no
// voter grants a vote to another node, and no new leader is elected, while
// the partitioned old leader still answers reads from its lease.
func TestLeaseToleratesFastVoterClocks(t *testing.T) {
	for phase := 1; phase <= 8; phase++ {
		nw := leaseNet(t, 3, nil)
		// 3 campaigns at the shortest timeout; 2 later, so that it votes.
		for id, j := range map[uint64]int{2: 5, 3: 0} {
			r := nw.node(id).r()
			r.useJitter(func(int) int { return j })
		}
		nw.tick(1, 2) // heartbeats acknowledged; 2 and 3 just heard from 1
		nw.isolate(1)
		served := 0
		// Time in ninths of a leader tick: the leader ticks every 9, the
		// voters every 8, first phase units after the last heartbeat;
		// at equal times the voters tick first.
		for now := 1; now <= 9*40; now++ {
			if (now-phase)%8 == 0 && now >= phase {
				nw.node(2).rn.Tick()
				nw.node(3).rn.Tick()
				nw.settle()
			}
			if now%9 == 0 {
				nw.tick(1, 1)
			}
			if nw.node(1).r().state == StateLeader && leaseRead(nw, 1, "r") {
				served++
			}
			for _, id := range []uint64{2, 3} {
				r := nw.node(id).r()
				if r.Term > 1 && (r.state == StateLeader || (r.Vote != None && r.Vote != id)) {
					if nw.node(1).r().state == StateLeader && leaseValidNow(nw) {
						t.Fatalf("phase %d, time %d: node %d voted for %d / is %s in term %d while the old leader holds its lease",
							phase, now, id, r.Vote, r.state, r.Term)
					}
				}
			}
		}
		if served == 0 {
			t.Fatalf("phase %d: no lease read served at all", phase)
		}
		if l := nw.leader(); l != 2 && l != 3 {
			t.Fatalf("phase %d: no new leader elected: %d", phase, l)
		}
	}
}

// leaseValidNow reports whether node 1 would answer a read from its lease.
func leaseValidNow(nw *testNet) bool {
	r := nw.node(1).r()
	return r.leaseValid() && r.committedInTerm()
}
