package raft

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	pb "github.com/raftkit/raft/raftpb"
	"github.com/raftkit/raft/tracker"
)

func TestElectionAppendsEmptyEntryAndCommitsIt(t *testing.T) {
	nw := newTestNet(t, 3, nil, nil)
	nw.campaign(1)
	nw.mustLead(1)
	for _, id := range nw.ids {
		r := nw.node(id).r()
		if r.Term != 1 || r.lead != 1 || r.log.committed != 2 {
			t.Fatalf("node %d: term %d lead %d commit %d, want 1, 1, 2", id, r.Term, r.lead, r.log.committed)
		}
		if e := r.log.everything(); len(e) != 1 || e[0].Term != 1 || len(e[0].Data) != 0 {
			t.Fatalf("node %d log %v, want one empty entry of term 1", id, e)
		}
	}
}

func TestRandomizedElectionTimeoutStaysInRange(t *testing.T) {
	r := newTestNet(t, 1, nil, nil).node(1).r()
	seen := map[int]bool{}
	for i := 0; i < 1000; i++ {
		r.drawElectionTimeout()
		to := r.randomizedElectionTimeout
		if to < r.electionTimeout || to >= 2*r.electionTimeout {
			t.Fatalf("timeout %d outside [%d, %d)", to, r.electionTimeout, 2*r.electionTimeout)
		}
		seen[to] = true
	}
	if len(seen) != r.electionTimeout {
		t.Fatalf("drew %d distinct timeouts, want all %d", len(seen), r.electionTimeout)
	}
	// The shared source is used by default and is safe for concurrent use;
	// it too stays in range.
	for i := 0; i < 100; i++ {
		if v := sharedJitter.Intn(7); v < 0 || v >= 7 {
			t.Fatalf("shared jitter gave %d", v)
		}
	}
}

func TestSeededJitterIsReproducible(t *testing.T) {
	a, b := newLockedJitter(42), newLockedJitter(42)
	for i := 0; i < 50; i++ {
		if x, y := a.Intn(1000), b.Intn(1000); x != y {
			t.Fatalf("draw %d: %d != %d", i, x, y)
		}
	}
}

func TestFollowerCampaignsAfterElectionTimeout(t *testing.T) {
	nw := newTestNet(t, 3, nil, nil)
	r := nw.node(2).r()
	nw.tick(2, r.randomizedElectionTimeout-1)
	if r.state != StateFollower {
		t.Fatalf("campaigned early, state %s", r.state)
	}
	nw.tick(2, 1)
	nw.mustLead(2)
}

func TestPreVoteKeepsIsolatedNodeFromRaisingTerm(t *testing.T) {
	nw := newTestNet(t, 3, nil, func(c *Config) { c.PreVote = true })
	nw.campaign(1)
	nw.isolate(3)
	nw.tick(3, 50)
	r3 := nw.node(3).r()
	if r3.Term != 1 || r3.state != StatePreCandidate {
		t.Fatalf("isolated node: term %d state %s, want term 1 as pre-candidate", r3.Term, r3.state)
	}
	nw.heal()
	// The rejoining node's pre-votes are refused (the others have a leader
	// and a log at least as long), so the leader keeps its term.
	nw.node(3).rn.Tick()
	for i := 0; i < 30 && nw.node(3).r().lead == None; i++ {
		nw.tick(1, 1)
	}
	nw.mustLead(1)
	if r1 := nw.node(1).r(); r1.Term != 1 {
		t.Fatalf("leader term %d, want 1", r1.Term)
	}
}

func TestCheckQuorumLeaderStepsDownWithoutQuorum(t *testing.T) {
	nw := newTestNet(t, 3, nil, func(c *Config) { c.CheckQuorum = true })
	nw.campaign(1)
	nw.isolate(1)
	r := nw.node(1).r()
	nw.tick(1, r.electionTimeout) // first check: everyone was active
	nw.mustLead(1)
	nw.tick(1, r.electionTimeout)
	if r.state != StateFollower || r.lead != None {
		t.Fatalf("isolated leader is %s with lead %d, want follower without leader", r.state, r.lead)
	}
}

func TestCheckQuorumLeaseIgnoresHigherTermVotes(t *testing.T) {
	nw := newTestNet(t, 3, nil, func(c *Config) { c.CheckQuorum = true })
	nw.campaign(1)
	r2 := nw.node(2).r()
	vote := pb.Message{From: 3, To: 2, Type: pb.MsgVote, Term: 5, LogTerm: 1, Index: 2}
	_ = nw.node(2).rn.Step(vote)
	if r2.Term != 1 || r2.Vote != 1 {
		t.Fatalf("in lease: term %d vote %d, want 1 and 1", r2.Term, r2.Vote)
	}
	// A transfer campaign overrides the lease.
	vote.Context = []byte(campaignTransfer)
	_ = nw.node(2).rn.Step(vote)
	if r2.Term != 5 || r2.Vote != 3 {
		t.Fatalf("forced: term %d vote %d, want 5 and 3", r2.Term, r2.Vote)
	}
}

func TestLeaderTransferToUpToDateFollower(t *testing.T) {
	nw := newTestNet(t, 3, nil, nil)
	nw.campaign(1)
	nw.node(1).rn.TransferLeader(2)
	nw.settle()
	nw.mustLead(2)
	if r := nw.node(2).r(); r.Term != 2 {
		t.Fatalf("term %d, want 2", r.Term)
	}
}

func TestLeaderTransferCatchesUpLaggingTarget(t *testing.T) {
	nw := newTestNet(t, 3, nil, nil)
	nw.campaign(1)
	nw.isolate(3)
	if err := nw.propose(1, "x"); err != nil {
		t.Fatal(err)
	}
	nw.heal()
	nw.node(1).rn.TransferLeader(3)
	nw.settle()
	nw.mustLead(3)
	// 2: first leader's entry, 3: "x", 4: the new leader's entry.
	if got := nw.node(3).r().log.last(); got != 4 {
		t.Fatalf("new leader's last index %d, want 4", got)
	}
}

func TestLeaderTransferDropsProposalsAndAbortsAfterTimeout(t *testing.T) {
	nw := newTestNet(t, 3, nil, nil)
	nw.campaign(1)
	nw.isolate(3)
	nw.node(1).rn.TransferLeader(3)
	nw.settle()
	r := nw.node(1).r()
	if r.leadTransferee != 3 {
		t.Fatalf("transferee %d, want 3", r.leadTransferee)
	}
	if err := nw.propose(1, "x"); !errors.Is(err, ErrProposalDropped) {
		t.Fatalf("proposal during transfer: %v, want ErrProposalDropped", err)
	}
	nw.tick(1, r.electionTimeout)
	if r.leadTransferee != None {
		t.Fatalf("transfer not aborted after an election timeout")
	}
	if err := nw.propose(1, "y"); err != nil {
		t.Fatalf("proposal after abort: %v", err)
	}
}

func TestLearnerNeverCampaignsButVotes(t *testing.T) {
	nw := newTestNet(t, 2, []uint64{3}, nil)
	nw.tick(3, 100)
	if r := nw.node(3).r(); r.state != StateFollower || r.Term != 0 || !r.isLearner {
		t.Fatalf("learner: %s term %d learner %v", r.state, r.Term, r.isLearner)
	}
	_ = nw.node(3).rn.Step(pb.Message{From: 1, To: 3, Type: pb.MsgVote, Term: 2, LogTerm: 1, Index: 1})
	nw.handleReady(3)
	var granted bool
	for _, m := range nw.queue {
		granted = granted || (m.Type == pb.MsgVoteResp && !m.Reject && m.To == 1)
	}
	if !granted {
		t.Fatalf("learner did not grant its vote: %v", nw.queue)
	}
}

func TestProposalForwarding(t *testing.T) {
	nw := newTestNet(t, 3, nil, nil)
	nw.campaign(1)
	if err := nw.propose(2, "fwd"); err != nil {
		t.Fatal(err)
	}
	for _, id := range nw.ids {
		if a := nw.node(id).applied; len(a) != 1 || string(a[0].Data) != "fwd" {
			t.Fatalf("node %d applied %v", id, a)
		}
	}

	nw = newTestNet(t, 3, nil, func(c *Config) { c.DisableProposalForwarding = true })
	nw.campaign(1)
	if err := nw.propose(2, "fwd"); !errors.Is(err, ErrProposalDropped) {
		t.Fatalf("forwarding disabled: %v", err)
	}
	// Without a leader there is nowhere to forward.
	nw = newTestNet(t, 3, nil, nil)
	if err := nw.propose(2, "x"); !errors.Is(err, ErrProposalDropped) {
		t.Fatalf("no leader: %v", err)
	}
}

func TestMaxUncommittedEntriesSize(t *testing.T) {
	nw := newTestNet(t, 3, nil, func(c *Config) { c.MaxUncommittedEntriesSize = 10 })
	nw.campaign(1)
	nw.isolate(2)
	nw.isolate(3)
	rn := nw.node(1).rn
	// An empty tail takes anything, even beyond the limit.
	if err := rn.Propose(make([]byte, 30)); err != nil {
		t.Fatal(err)
	}
	if err := rn.Propose([]byte("a")); !errors.Is(err, ErrProposalDropped) {
		t.Fatalf("over the limit: %v", err)
	}
	// Empty payloads always pass.
	if err := rn.Propose(nil); err != nil {
		t.Fatalf("empty payload: %v", err)
	}
	nw.heal()
	nw.settle()
	nw.tick(1, 1)
	if u := nw.node(1).r().uncommitted.size; u != 0 {
		t.Fatalf("uncommitted size %d after commit and apply, want 0", u)
	}
	if err := nw.propose(1, "b"); err != nil {
		t.Fatal(err)
	}
}

func TestForgetLeaderLetsFollowerVote(t *testing.T) {
	nw := newTestNet(t, 3, nil, func(c *Config) { c.CheckQuorum = true })
	nw.campaign(1)
	rn := nw.node(2).rn
	if err := rn.ForgetLeader(); err != nil {
		t.Fatal(err)
	}
	if lead := nw.node(2).r().lead; lead != None {
		t.Fatalf("lead %d after ForgetLeader", lead)
	}
	// Without a known leader the lease no longer holds.
	_ = rn.Step(pb.Message{From: 3, To: 2, Type: pb.MsgVote, Term: 3, LogTerm: 2, Index: 2})
	if r := nw.node(2).r(); r.Vote != 3 {
		t.Fatalf("vote %d, want 3", r.Vote)
	}
	// Under lease-based reads forgetting is refused.
	nw = newTestNet(t, 3, nil, func(c *Config) { c.CheckQuorum, c.ReadOnlyOption = true, ReadOnlyLeaseBased })
	nw.campaign(1)
	_ = nw.node(2).rn.ForgetLeader()
	if lead := nw.node(2).r().lead; lead != 1 {
		t.Fatalf("lease-based: lead %d, want 1", lead)
	}
}

// removeNode commits and applies a change removing id, proposed at leader.
func removeNode(t *testing.T, nw *testNet, leader, id uint64) {
	cc := pb.ConfChange{Type: pb.ConfChangeRemoveNode, NodeID: id}
	if err := nw.node(leader).rn.ProposeConfChange(cc); err != nil {
		t.Fatal(err)
	}
	nw.settle()
}

func TestStepDownOnRemoval(t *testing.T) {
	for _, stepDown := range []bool{false, true} {
		nw := newTestNet(t, 3, nil, func(c *Config) { c.StepDownOnRemoval = stepDown })
		nw.campaign(1)
		removeNode(t, nw, 1, 1)
		r := nw.node(1).r()
		if got := r.state == StateLeader; got == stepDown {
			t.Fatalf("StepDownOnRemoval=%v: removed leader is %s", stepDown, r.state)
		}
		// A removed leader takes no proposals either way.
		if err := nw.node(1).rn.Propose([]byte("x")); !errors.Is(err, ErrProposalDropped) && r.state == StateLeader {
			t.Fatalf("removed leader accepted a proposal: %v", err)
		}
	}
}

func TestConfChangeValidationAllowsOnePending(t *testing.T) {
	for _, disabled := range []bool{false, true} {
		nw := newTestNet(t, 3, nil, func(c *Config) { c.DisableConfChangeValidation = disabled })
		nw.campaign(1)
		nw.isolate(2)
		nw.isolate(3)
		rn := nw.node(1).rn
		for _, id := range []uint64{4, 5} {
			if err := rn.ProposeConfChange(pb.ConfChange{Type: pb.ConfChangeAddLearnerNode, NodeID: id}); err != nil {
				t.Fatal(err)
			}
		}
		nw.settle()
		ents := nw.node(1).r().log.everything()
		last := ents[len(ents)-1]
		if got := last.Type == pb.EntryConfChange; got != disabled {
			t.Fatalf("validation disabled=%v: second change kept=%v (%v)", disabled, got, last)
		}
	}
}

func TestConfChangeLeavingJointRefusedOutsideJoint(t *testing.T) {
	nw := newTestNet(t, 3, nil, nil)
	nw.campaign(1)
	if err := nw.node(1).rn.ProposeConfChange(pb.ConfChangeV2{}); err != nil {
		t.Fatal(err)
	}
	nw.settle()
	ents := nw.node(1).r().log.everything()
	if last := ents[len(ents)-1]; last.Type != pb.EntryNormal || len(last.Data) != 0 {
		t.Fatalf("leave-joint outside joint kept: %v", last)
	}
}

func TestJointAutoLeave(t *testing.T) {
	nw := newTestNet(t, 3, nil, nil)
	nw.campaign(1)
	nw.addNode(4, pb.ConfState{Voters: []uint64{1, 2, 3}}, nil)
	cc := pb.ConfChangeV2{Changes: []pb.ConfChangeSingle{
		{Type: pb.ConfChangeAddNode, NodeID: 4}, {Type: pb.ConfChangeRemoveNode, NodeID: 3},
	}}
	if err := nw.node(1).rn.ProposeConfChange(cc); err != nil {
		t.Fatal(err)
	}
	nw.settle()
	nw.tick(1, 1)
	cfg := nw.node(1).r().trk.Config
	if len(cfg.Voters[1]) != 0 || cfg.AutoLeave {
		t.Fatalf("still joint after auto-leave: %s", cfg)
	}
	if got := cfg.Voters.String(); got != "(1 2 4)" {
		t.Fatalf("voters %s, want (1 2 4)", got)
	}
}

func TestNoCampaignWithUnappliedConfChange(t *testing.T) {
	nw := newTestNet(t, 1, nil, nil)
	r := nw.node(1).r()
	ccv := pb.ConfChange{Type: pb.ConfChangeAddNode, NodeID: 2}
	cc, _ := ccv.Marshal()
	r.log.write(pb.Entry{Term: 1, Index: 2, Type: pb.EntryConfChange, Data: cc})
	r.log.raiseCommit(2)
	_ = r.Step(pb.Message{From: 1, Type: pb.MsgHup})
	if r.state != StateFollower {
		t.Fatalf("campaigned with an unapplied conf change: %s", r.state)
	}
	r.log.markApplied(2, 0)
	_ = r.Step(pb.Message{From: 1, Type: pb.MsgHup})
	if r.state != StateCandidate {
		t.Fatalf("state %s after applying, want candidate", r.state)
	}
}

func TestFlowControlInflightLimitAndHeartbeatResume(t *testing.T) {
	nw := newTestNet(t, 2, nil, func(c *Config) { c.MaxInflightMsgs = 3; c.MaxSizePerMsg = 0 })
	nw.campaign(1)
	nw.dropType[pb.MsgAppResp] = true
	nw.sent = nil
	for i := 0; i < 6; i++ {
		_ = nw.node(1).rn.Propose([]byte("x"))
	}
	nw.settle()
	apps := nw.sentOfType(pb.MsgApp)
	if len(apps) != 3 {
		t.Fatalf("sent %d appends with a window of 3", len(apps))
	}
	pr := nw.node(1).r().trk.Progress[2]
	if pr.State != tracker.StateReplicate || !pr.IsPaused() {
		t.Fatalf("progress %s, want paused replicate", pr)
	}
	// A heartbeat answer lets one empty append through a full window, so
	// that its answer can free the window.
	nw.heal()
	nw.tick(1, 1)
	if pr.IsPaused() || pr.Match != 8 {
		t.Fatalf("progress %s after the heartbeat round, want caught up", pr)
	}
}

func TestMaxInflightBytes(t *testing.T) {
	nw := newTestNet(t, 2, nil, func(c *Config) { c.MaxSizePerMsg = 0; c.MaxInflightBytes = 10 })
	nw.campaign(1)
	nw.dropType[pb.MsgAppResp] = true
	nw.sent = nil
	for i := 0; i < 5; i++ {
		_ = nw.node(1).rn.Propose([]byte("abcd"))
	}
	nw.settle()
	// 4+4 bytes fit, the third message (12 bytes) fills the window.
	if apps := nw.sentOfType(pb.MsgApp); len(apps) != 3 {
		t.Fatalf("sent %d appends, want 3", len(apps))
	}
}

func TestUnreachableFollowerFallsBackToProbe(t *testing.T) {
	nw := newTestNet(t, 2, nil, nil)
	nw.campaign(1)
	pr := nw.node(1).r().trk.Progress[2]
	if pr.State != tracker.StateReplicate {
		t.Fatalf("state %s", pr.State)
	}
	nw.node(1).rn.ReportUnreachable(2)
	if pr.State != tracker.StateProbe {
		t.Fatalf("state %s after unreachable, want probe", pr.State)
	}
	// A heartbeat answer from a caught-up probing peer brings it back.
	nw.tick(1, 1)
	if pr.State != tracker.StateReplicate {
		t.Fatalf("state %s after heartbeat round, want replicate", pr.State)
	}
}

// divergentFollower builds a leader (node 1, term 5) whose log has terms
// leaderTerms from index 2 on, and a follower (node 2) with
// followerTerms; both start from the bootstrap snapshot at index 1.
func divergentPair(t *testing.T, leaderTerms, followerTerms []uint64) (*raft, *raft) {
	mk := func(id uint64, terms []uint64, term uint64) *raft {
		s := NewMemoryStorage()
		_ = s.ApplySnapshot(pb.Snapshot{Metadata: pb.SnapshotMetadata{Index: 1, Term: 1, ConfState: pb.ConfState{Voters: []uint64{1, 2}}}})
		var ents []pb.Entry
		for i, tm := range terms {
			ents = append(ents, pb.Entry{Index: uint64(i) + 2, Term: tm})
		}
		_ = s.Append(ents)
		_ = s.SetHardState(pb.HardState{Term: term, Commit: 1})
		return raftFromConfig(netConfig(id, s))
	}
	leader := mk(1, leaderTerms, 4)
	leader.toCandidate()
	leader.toLeader()
	return leader, mk(2, followerTerms, 4)
}

func TestRejectHintSkipsDivergentTermsBothWays(t *testing.T) {
	// Follower side: it skips its own entries with terms above the probe's.
	leader, follower := divergentPair(t, []uint64{1, 2, 3, 3, 3}, []uint64{1, 3, 3, 4, 4, 4})
	follower.Step(pb.Message{From: 1, To: 2, Type: pb.MsgApp, Term: 5, LogTerm: 2, Index: 6})
	resp := follower.msgsAfterAppend[0]
	if !resp.Reject || resp.RejectHint != 2 || resp.LogTerm != 1 {
		t.Fatalf("follower hint: %+v, want reject at (2, term 1)", resp)
	}
	// Leader side: from hint (7, term 2) it jumps over its own entries of
	// terms above 2 (indexes 4-7), straight to (3, term 2).
	leader.msgs = nil
	pr := leader.trk.Progress[2]
	pr.Next = 8
	leader.Step(pb.Message{From: 2, To: 1, Type: pb.MsgAppResp, Term: 5, Reject: true, Index: 7, RejectHint: 7, LogTerm: 2})
	if pr.Next != 4 {
		t.Fatalf("next %d after rejection, want 4 (the last entry of term <= 2)", pr.Next)
	}
	if m := leader.msgs[len(leader.msgs)-1]; m.Type != pb.MsgApp || m.Index != 3 || m.LogTerm != 2 {
		t.Fatalf("next probe %+v, want MsgApp at (3, term 2)", m)
	}
}

func TestCommitSentToFollowerIsCappedByItsLog(t *testing.T) {
	nw := newTestNet(t, 3, nil, nil)
	nw.campaign(1)
	nw.isolate(3)
	_ = nw.propose(1, "a")
	nw.heal()
	nw.sent = nil
	nw.dropType[pb.MsgApp] = true
	nw.tick(1, 1)
	for _, hb := range nw.sentOfType(pb.MsgHeartbeat) {
		if hb.To == 3 && hb.Commit > 2 {
			t.Fatalf("heartbeat to lagging follower carries commit %d beyond its match 2", hb.Commit)
		}
	}
}

func TestSnapshotSentToLaggingFollowerOnlyWhenActive(t *testing.T) {
	nw := newTestNet(t, 3, nil, nil)
	nw.campaign(1)
	nw.isolate(3)
	for i := 0; i < 3; i++ {
		_ = nw.propose(1, "x")
	}
	n1 := nw.node(1)
	if _, err := n1.storage.CreateSnapshot(4, &pb.ConfState{Voters: []uint64{1, 2, 3}}, nil); err != nil {
		t.Fatal(err)
	}
	if err := n1.storage.Compact(4); err != nil {
		t.Fatal(err)
	}
	pr := n1.r().trk.Progress[3]
	pr.RecentActive = false
	pr.BecomeProbe()
	n1.r().replicate(3, n1.r().trk.Progress[3], true /* sendIfEmpty */)
	if pr.State == tracker.StateSnapshot {
		t.Fatal("snapshot sent to an inactive peer")
	}
	nw.heal()
	nw.sent = nil
	nw.tick(1, 1)
	snaps := nw.sentOfType(pb.MsgSnap)
	if len(snaps) != 1 || snaps[0].Snapshot.Metadata.Index != 4 {
		t.Fatalf("snapshots sent: %v", snaps)
	}
	n1.rn.ReportSnapshot(3, SnapshotFinish)
	nw.tick(1, 1)
	if got := nw.node(3).r().log.last(); got != 5 {
		t.Fatalf("follower last index %d after the snapshot, want 5", got)
	}
}

// unavailableSnapStorage reports its snapshot as temporarily unavailable.
type unavailableSnapStorage struct{ *MemoryStorage }

func (unavailableSnapStorage) Snapshot() (pb.Snapshot, error) {
	return pb.Snapshot{}, ErrSnapshotTemporarilyUnavailable
}

func TestSnapshotTemporarilyUnavailableIsRetriedLater(t *testing.T) {
	ms := NewMemoryStorage()
	_ = ms.ApplySnapshot(pb.Snapshot{Metadata: pb.SnapshotMetadata{Index: 5, Term: 1, ConfState: pb.ConfState{Voters: []uint64{1, 2}}}})
	c := netConfig(1, ms)
	c.Storage = unavailableSnapStorage{ms}
	r := raftFromConfig(c)
	r.toCandidate()
	r.toLeader()
	pr := r.trk.Progress[2]
	pr.Next, pr.RecentActive = 3, true // below the compaction point
	r.msgs = nil
	r.replicate(2, r.trk.Progress[2], true /* sendIfEmpty */)
	if len(r.msgs) != 0 || pr.State == tracker.StateSnapshot {
		t.Fatalf("sent %v, state %s", r.msgs, pr.State)
	}
}

func TestRestoreIgnoresStaleAndFastForwardsMatching(t *testing.T) {
	nw := newTestNet(t, 2, nil, nil)
	nw.campaign(1)
	_ = nw.propose(1, "a")
	r := nw.node(2).r()
	cs := pb.ConfState{Voters: []uint64{1, 2}}
	stale := pb.Snapshot{Metadata: pb.SnapshotMetadata{Index: 2, Term: 2, ConfState: cs}}
	if r.adoptSnapshot(stale) {
		t.Fatal("restored a snapshot behind the commit index")
	}
	// A snapshot of an entry the log holds only moves the commit index.
	r.log.write(pb.Entry{Index: 4, Term: 2})
	matching := pb.Snapshot{Metadata: pb.SnapshotMetadata{Index: 4, Term: 2, ConfState: cs}}
	if r.adoptSnapshot(matching) || r.log.committed != 4 || r.log.last() != 4 {
		t.Fatalf("matching snapshot: committed %d last %d", r.log.committed, r.log.last())
	}
	// A conflicting one replaces the log.
	conflicting := pb.Snapshot{Metadata: pb.SnapshotMetadata{Index: 6, Term: 3, ConfState: cs}}
	if !r.adoptSnapshot(conflicting) || r.log.last() != 6 || r.log.committed != 6 {
		t.Fatalf("conflicting snapshot not installed: %s", &r.log)
	}
	// One that does not list this node is refused.
	foreign := pb.Snapshot{Metadata: pb.SnapshotMetadata{Index: 9, Term: 3, ConfState: pb.ConfState{Voters: []uint64{1}}}}
	if r.adoptSnapshot(foreign) {
		t.Fatal("restored a snapshot without this node")
	}
}

func TestReadIndexSafeWaitsForCommitInTermAndQuorum(t *testing.T) {
	nw := newTestNet(t, 3, nil, nil)
	nw.campaign(1)
	rn := nw.node(1).rn
	rn.ReadIndex([]byte("ctx1"))
	nw.settle()
	rs := nw.node(1).readStates
	if len(rs) != 1 || rs[0].Index != 2 || string(rs[0].RequestCtx) != "ctx1" {
		t.Fatalf("read states %v", rs)
	}
	// From a follower: forwarded, answered to it.
	nw.node(2).rn.ReadIndex([]byte("ctx2"))
	nw.settle()
	if rs := nw.node(2).readStates; len(rs) != 1 || rs[0].Index != 2 {
		t.Fatalf("follower read states %v", rs)
	}
	// Without a quorum of heartbeat answers nothing is served.
	nw.isolate(1)
	nw.node(1).readStates = nil
	rn.ReadIndex([]byte("ctx3"))
	nw.settle()
	if rs := nw.node(1).readStates; len(rs) != 0 {
		t.Fatalf("served without quorum: %v", rs)
	}
}

func TestReadIndexDeferredUntilLeaderCommitsInTerm(t *testing.T) {
	nw := newTestNet(t, 3, nil, nil)
	nw.campaign(1)
	// Node 2 wins term 2 but hears no acknowledgement of its entry.
	nw.dropType[pb.MsgAppResp] = true
	nw.campaign(2)
	nw.mustLead(2)
	n := nw.node(2)
	n.rn.ReadIndex([]byte("early"))
	nw.settle()
	if len(n.readStates) != 0 || len(n.r().pendingReadIndexMessages) != 1 {
		t.Fatalf("read served before a commit in term: %v", n.readStates)
	}
	nw.heal()
	nw.tick(2, 1)
	if len(n.readStates) != 1 || n.readStates[0].Index != 3 {
		t.Fatalf("deferred read: %v", n.readStates)
	}
}

func TestReadIndexLeaseBasedAndSingleNode(t *testing.T) {
	nw := newTestNet(t, 3, nil, func(c *Config) { c.CheckQuorum, c.ReadOnlyOption = true, ReadOnlyLeaseBased })
	nw.campaign(1)
	nw.isolate(1)
	nw.node(1).rn.ReadIndex([]byte("lease"))
	if rs := nw.node(1).r().readStates; len(rs) != 1 || rs[0].Index != 2 {
		t.Fatalf("lease read %v", rs)
	}
	single := newTestNet(t, 1, nil, nil)
	single.campaign(1)
	single.node(1).rn.ReadIndex([]byte("one"))
	if rs := single.node(1).r().readStates; len(rs) != 1 || rs[0].Index != 2 {
		t.Fatalf("single node read %v", rs)
	}
}

func TestStaleStorageAppendRespDoesNotStabilize(t *testing.T) {
	s := NewMemoryStorage()
	_ = s.ApplySnapshot(pb.Snapshot{Metadata: pb.SnapshotMetadata{Index: 1, Term: 1, ConfState: pb.ConfState{Voters: []uint64{1, 2}}}})
	r := raftFromConfig(netConfig(1, s))
	r.toFollower(2, 2)
	r.log.write(pb.Entry{Index: 2, Term: 2})
	r.toFollower(3, 2)
	r.log.write(pb.Entry{Index: 2, Term: 2}) // the same entry, now from term 3's leader
	_ = r.Step(pb.Message{Type: pb.MsgStorageAppendResp, From: LocalAppendThread, Term: 2, Index: 2, LogTerm: 2})
	if !r.log.hasUndurable() {
		t.Fatal("an append response from an older term marked the entry durable")
	}
	_ = r.Step(pb.Message{Type: pb.MsgStorageAppendResp, From: LocalAppendThread, Term: 3, Index: 2, LogTerm: 2})
	if r.log.hasUndurable() {
		t.Fatal("a current append response did not mark the entry durable")
	}
}

func TestConfigValidate(t *testing.T) {
	base := func() Config { return *netConfig(1, NewMemoryStorage()) }
	for _, tc := range []struct {
		mod  func(*Config)
		want string
	}{
		{func(c *Config) { c.ID = None }, "cannot use none as id"},
		{func(c *Config) { c.ID = LocalApplyThread }, "cannot use local target as id"},
		{func(c *Config) { c.HeartbeatTick = 0 }, "heartbeat tick must be greater than 0"},
		{func(c *Config) { c.ElectionTick = 1 }, "election tick must be greater than heartbeat tick"},
		{func(c *Config) { c.Storage = nil }, "storage cannot be nil"},
		{func(c *Config) { c.MaxInflightMsgs = 0 }, "max inflight messages must be greater than 0"},
		{func(c *Config) { c.MaxInflightBytes = 1 }, "max inflight bytes must be >= max message size"},
		{func(c *Config) { c.ReadOnlyOption = ReadOnlyLeaseBased }, "CheckQuorum must be enabled when ReadOnlyOption is ReadOnlyLeaseBased"},
	} {
		c := base()
		tc.mod(&c)
		if err := c.checkAndFill(); err == nil || err.Error() != tc.want {
			t.Errorf("got %v, want %q", err, tc.want)
		}
	}
	c := base()
	c.MaxSizePerMsg, c.Logger = 7, nil
	if err := c.checkAndFill(); err != nil {
		t.Fatal(err)
	}
	if c.MaxUncommittedEntriesSize != noLimit || c.MaxCommittedSizePerReady != 7 || c.MaxInflightBytes != noLimit || c.Logger == nil {
		t.Fatalf("defaults not filled: %+v", c)
	}
}

func TestStatusJSONAndCopy(t *testing.T) {
	nw := newTestNet(t, 2, nil, nil)
	nw.campaign(1)
	st := collectStatus(nw.node(1).r())
	var decoded map[string]interface{}
	if err := json.Unmarshal([]byte(st.String()), &decoded); err != nil {
		t.Fatalf("invalid JSON %s: %v", st, err)
	}
	if decoded["raftState"] != "StateLeader" || decoded["lead"] != "1" {
		t.Fatalf("decoded %v", decoded)
	}
	// The copy shares nothing with the leader's progress.
	p := st.Progress[2]
	p.Inflights.Add(100, 1)
	if nw.node(1).r().trk.Progress[2].Inflights.Count() != 0 {
		t.Fatal("status progress aliases the tracker")
	}
	if s := collectStatus(nw.node(2).r()); s.Progress != nil || !strings.Contains(s.String(), `"progress":{}`) {
		t.Fatalf("follower status %s", s)
	}
}

func TestMessageTypeTables(t *testing.T) {
	for typ := pb.MsgHup; typ <= pb.MsgForgetLeader+1; typ++ {
		local := typ == pb.MsgHup || typ == pb.MsgBeat || typ == pb.MsgUnreachable || typ == pb.MsgSnapStatus ||
			typ == pb.MsgCheckQuorum || (typ >= pb.MsgStorageAppend && typ <= pb.MsgStorageApplyResp)
		if IsLocalMsg(typ) != local {
			t.Errorf("IsLocalMsg(%s) = %v", typ, !local)
		}
		resp := typ == pb.MsgAppResp || typ == pb.MsgVoteResp || typ == pb.MsgHeartbeatResp || typ == pb.MsgUnreachable ||
			typ == pb.MsgReadIndexResp || typ == pb.MsgPreVoteResp || typ == pb.MsgStorageAppendResp || typ == pb.MsgStorageApplyResp
		if IsResponseMsg(typ) != resp {
			t.Errorf("IsResponseMsg(%s) = %v", typ, !resp)
		}
	}
	if IsLocalMsg(-1) || IsResponseMsg(1000) {
		t.Error("out-of-range types classified")
	}
}

func TestMalformedPeerMessagesAreDropped(t *testing.T) {
	nw := newTestNet(t, 3, nil, nil)
	nw.campaign(1)
	leader, follower := nw.node(1).r(), nw.node(2).r()
	term := leader.Term
	for _, tc := range []struct {
		r *raft
		m pb.Message
	}{
		{follower, pb.Message{Type: pb.MsgApp, From: 1, Term: term, Index: 2, LogTerm: term, Entries: []pb.Entry{{Index: 5, Term: term}}}},
		{follower, pb.Message{Type: pb.MsgHeartbeat, From: 1, Term: term, Commit: 99}},
		{follower, pb.Message{Type: pb.MsgApp, From: 2, Term: term}},
		{follower, pb.Message{Type: pb.MsgSnap, From: 1}},
		{leader, pb.Message{Type: pb.MsgAppResp, From: 2, Term: term, Index: 99}},
		{leader, pb.Message{Type: pb.MsgProp, From: 2}},
		{leader, pb.Message{Type: pb.MsgProp, From: 2, Entries: []pb.Entry{{Type: pb.EntryConfChange, Data: []byte{0xff}}}}},
		{leader, pb.Message{Type: pb.MsgReadIndex, From: 2}},
		{follower, pb.Message{Type: pb.MsgProp, From: 3, Term: 7, Entries: []pb.Entry{{}}}},
		{follower, pb.Message{Type: pb.MsgStorageApplyResp, Entries: []pb.Entry{{Index: 99}}}},
	} {
		before := tc.r.droppedMsgs
		_ = tc.r.Step(tc.m)
		if tc.r.droppedMsgs != before+1 {
			t.Errorf("%s from %d not dropped", tc.m.Type, tc.m.From)
		}
	}
	if leader.state != StateLeader || leader.Term != term || follower.Term != term {
		t.Fatal("a dropped message changed the state")
	}
}

func TestStateTypeStringAndJSON(t *testing.T) {
	if s := StatePreCandidate.String(); s != "StatePreCandidate" {
		t.Fatal(s)
	}
	if b, _ := StateLeader.MarshalJSON(); string(b) != `"StateLeader"` {
		t.Fatal(string(b))
	}
	if s := StateType(9).String(); s != "StateType(9)" {
		t.Fatal(s)
	}
}
