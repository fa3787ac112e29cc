package raft

import (
	"fmt"
	"testing"

	pb "github.com/raftkit/raft/raftpb"
)

// The tests of this file crash a node whose durable commit index trails its
// log by two configuration changes, restart it, and check that it cannot
// lead a configuration the group has left (see restart_commit.go). Each
// route to that state is one the simulator found (seed 1143) or that a
// scenario reproduces on etcd/raft v3.6.0.

// splitBrainOpts are the options under which a lagging voter hands the
// restarted node its vote: PreVote and CheckQuorum, as in the issue.
func splitBrainOpts(c *Config) { c.PreVote, c.CheckQuorum = true, true }

// replaceOneByFour is the joint change (auto leave) that makes learner 4 a
// voter and removes voter 1.
var replaceOneByFour = pb.ConfChangeV2{Changes: []pb.ConfChangeSingle{
	{Type: pb.ConfChangeAddNode, NodeID: 4},
	{Type: pb.ConfChangeRemoveNode, NodeID: 1},
}}

// restartNode crashes node id and starts it again from its storage, with
// the durable commit index lowered to commit: what a crash loses when a
// torn write kept entries but not the HardState written with them, or when
// commit-only HardStates were never synced. The state machine restarts from
// the storage's snapshot; messages in flight to the node are lost.
func (nw *testNet) restartNode(id, commit uint64, adjust func(*Config)) {
	nw.t.Helper()
	n := nw.nodes[id]
	hs, _, err := n.storage.InitialState()
	if err != nil {
		nw.t.Fatal(err)
	}
	if commit > hs.Commit {
		nw.t.Fatalf("restart %d: commit %d above the durable %d", id, commit, hs.Commit)
	}
	hs.Commit = commit
	if err := n.storage.SetHardState(hs); err != nil {
		nw.t.Fatal(err)
	}
	snap, err := n.storage.Snapshot()
	if err != nil {
		nw.t.Fatal(err)
	}
	c := netConfig(id, n.storage)
	adjust(c)
	c.Applied = snap.Metadata.Index
	rn, err := NewRawNode(c)
	if err != nil {
		nw.t.Fatal(err)
	}
	rn.raft.useJitter(newLockedJitter(id).Intn)
	n.rn, n.applied = rn, nil
	nw.dropQueued(func(m pb.Message) bool { return m.To == id })
}

// dropQueued discards the queued messages for which lost is true.
func (nw *testNet) dropQueued(lost func(pb.Message) bool) {
	kept := nw.queue[:0]
	for _, m := range nw.queue {
		if !lost(m) {
			kept = append(kept, m)
		}
	}
	nw.queue = kept
}

// deliverRound handles every Ready, then steps the queued messages for
// which pick is true, once (leaving the others queued), and handles the
// Readys that produced. It gives a test control over the order in which
// messages arrive.
func (nw *testNet) deliverRound(pick func(pb.Message) bool) {
	for _, id := range nw.ids {
		nw.handleReady(id)
	}
	var now, later []pb.Message
	for _, m := range nw.queue {
		if pick(m) {
			now = append(now, m)
		} else {
			later = append(later, m)
		}
	}
	nw.queue = later
	for _, m := range now {
		nw.sent = append(nw.sent, m)
		_ = nw.nodes[m.To].rn.Step(m)
	}
	for _, id := range nw.ids {
		nw.handleReady(id)
	}
}

func to(ids ...uint64) func(pb.Message) bool {
	return func(m pb.Message) bool {
		for _, id := range ids {
			if m.To == id {
				return true
			}
		}
		return false
	}
}

// checkCommittedAgree fails the test if two nodes hold different entries at
// an index both have committed durably.
func checkCommittedAgree(t *testing.T, nw *testNet) {
	t.Helper()
	for i, a := range nw.ids {
		for _, b := range nw.ids[i+1:] {
			if err := committedAgree(nw.nodes[a].storage, nw.nodes[b].storage); err != nil {
				t.Errorf("nodes %d and %d: %v", a, b, err)
			}
		}
	}
}

func committedAgree(a, b *MemoryStorage) error {
	ha, _, _ := a.InitialState()
	hb, _, _ := b.InitialState()
	fa, _ := a.FirstIndex()
	fb, _ := b.FirstIndex()
	for i := max(fa, fb); i <= min(ha.Commit, hb.Commit); i++ {
		ea, errA := a.Entries(i, i+1, noLimit)
		eb, errB := b.Entries(i, i+1, noLimit)
		if errA != nil || errB != nil {
			return fmt.Errorf("index %d: %v, %v", i, errA, errB)
		}
		if da, db := DescribeEntries(ea, nil), DescribeEntries(eb, nil); da != db {
			return fmt.Errorf("both committed index %d, with different entries: %q and %q", i, da, db)
		}
	}
	return nil
}

// ownLease makes node id forget its lease, the way ElectionTick ticks
// without hearing from a leader would, without letting it campaign.
func ownLease(t *testing.T, nw *testNet, id uint64) {
	t.Helper()
	n := nw.node(id)
	for n.r().electionElapsed < n.r().electionTimeout {
		n.r().randomizedElectionTimeout = 2 * n.r().electionTimeout
		n.rn.Tick()
	}
	nw.settle()
}

// TestRestartCommitFollowerRoute: leader 2 replaces voter 1 by learner 4.
// Node 1 misses the enter-joint entry (3), which commits with 2 and 3; when
// 1 rejects the leave-joint entry (4), 2 probes it with both, and Commit:3,
// in one MsgApp. Node 1 crashes while saving that: the entries are durable,
// its HardState's commit index is still 2. It restarts in (1 2 3); voter 3,
// cut off from leader 2 after the leave-joint entry committed, grants it a
// vote, while 2 commits an entry at index 5 with (2 4) in (2 3 4).
func TestRestartCommitFollowerRoute(t *testing.T) {
	nw := newTestNet(t, 3, []uint64{4}, splitBrainOpts)
	nw.campaign(2)
	nw.mustLead(2)

	if err := nw.node(2).rn.ProposeConfChange(replaceOneByFour); err != nil {
		t.Fatal(err)
	}
	nw.handleReady(2)
	nw.dropQueued(to(1))      // 1's copy of the enter-joint entry is lost
	nw.deliverRound(to(3, 4)) // 3 and 4 append it
	nw.deliverRound(to(2))    // it commits; 2 appends the leave-joint entry
	nw.deliverRound(to(1))    // 1 rejects that
	nw.deliverRound(to(2))    // 2 probes with both entries
	nw.deliverRound(to(1))    // 1 appends them with Commit:3
	if st := nw.node(1).rn.BasicStatus(); st.Commit != 3 || nw.node(1).r().log.last() != 4 {
		t.Fatalf("node 1 before the crash: commit %d, last index %d; want 3, 4", st.Commit, nw.node(1).r().log.last())
	}
	nw.restartNode(1, 2 /* commit */, splitBrainOpts)
	nw.isolate(1)
	nw.deliverRound(to(3, 4)) // the leave-joint entry commits with 2, 3, 4
	nw.deliverRound(to(2))
	nw.isolate(3)
	if err := nw.propose(2, "x"); err != nil {
		t.Fatal(err)
	}
	if st := nw.node(2).rn.BasicStatus(); st.Commit != 5 {
		t.Fatalf("leader 2 committed up to %d, want 5", st.Commit)
	}

	campaignWithLaggingVoter(t, nw)
}

// TestRestartCommitLeaderRoute: leader 1 replaces itself by learner 4 while
// voter 3 is cut off. Both joint entries (3, 4) commit with 1, 2 and 4, but
// the commit indexes 1 learned came in commit-only HardStates that were
// never synced: it crashes with entries up to 4 durable and a commit index
// of 2. Node 2 takes over with 4's vote in (2 3 4) and commits an entry at
// index 5; node 1 restarts in (1 2 3), and 3 grants it a vote.
func TestRestartCommitLeaderRoute(t *testing.T) {
	nw := newTestNet(t, 3, []uint64{4}, splitBrainOpts)
	nw.campaign(1)
	nw.mustLead(1)
	nw.isolate(3)

	if err := nw.node(1).rn.ProposeConfChange(replaceOneByFour); err != nil {
		t.Fatal(err)
	}
	nw.settle()
	for _, id := range []uint64{1, 2, 4} {
		if st := nw.node(id).rn.BasicStatus(); st.Commit != 4 {
			t.Fatalf("node %d committed up to %d, want 4", id, st.Commit)
		}
	}
	nw.restartNode(1, 2 /* commit */, splitBrainOpts)
	nw.isolate(1)
	ownLease(t, nw, 2)
	ownLease(t, nw, 4)
	nw.campaign(2)
	nw.mustLead(2)
	if err := nw.propose(2, "x"); err != nil {
		t.Fatal(err)
	}
	if st := nw.node(2).rn.BasicStatus(); st.Commit != 6 {
		t.Fatalf("leader 2 committed up to %d, want 6", st.Commit)
	}

	campaignWithLaggingVoter(t, nw)
}

// campaignWithLaggingVoter ends both routes: restarted node 1 campaigns
// with only voter 3 reachable (and out of its leader's lease). Node 1 must
// not win: it has applied the enter-joint change its restart committed, so
// it needs a quorum of (2 3 4) too.
func campaignWithLaggingVoter(t *testing.T, nw *testNet) {
	t.Helper()
	nw.heal()
	for _, id := range []uint64{2, 4} {
		nw.cut[[2]uint64{1, id}], nw.cut[[2]uint64{id, 1}] = true, true
		nw.cut[[2]uint64{3, id}], nw.cut[[2]uint64{id, 3}] = true, true
	}
	ownLease(t, nw, 3)
	nw.settle() // node 1 hands out what its restart committed
	n1 := nw.node(1)
	if cs := n1.r().trk.Config; len(cs.Voters[1]) == 0 {
		t.Errorf("restarted node 1 is in %s, want the joint configuration", cs)
	}
	if err := n1.rn.Campaign(); err != nil {
		t.Fatal(err)
	}
	nw.settle()
	if n1.r().state == StateLeader {
		n2 := nw.node(2).r()
		t.Errorf("restarted node 1 leads term %d with voter 3 alone, in %s (node 2 is %s of term %d)",
			n1.r().Term, n1.r().trk.Config, n2.state, n2.Term)
		_ = nw.propose(1, "y")
	}
	checkCommittedAgree(t, nw)
}

// TestRestartCommitFirstReady checks what the application sees of the
// raise: the first Ready reports the raised commit index and hands out the
// entries up to it, the enter-joint change included.
func TestRestartCommitFirstReady(t *testing.T) {
	s := restartStorage(t, 2 /* commit */, pb.Entry{Index: 2, Term: 2}, joint(3), leave(4))
	rn := rnNew(t, rnConfig(1, s))
	if st := rn.BasicStatus(); st.Commit != 3 || st.Applied != 1 {
		t.Fatalf("after start: commit %d, applied %d; want 3, 1", st.Commit, st.Applied)
	}
	rd := rn.Ready()
	if rd.HardState.Commit != 3 {
		t.Errorf("first Ready's HardState is %s, want commit 3", DescribeHardState(rd.HardState))
	}
	if n := len(rd.CommittedEntries); n != 2 || rd.CommittedEntries[n-1].Index != 3 {
		t.Errorf("first Ready's committed entries: %s", DescribeEntries(rd.CommittedEntries, nil))
	}
}

// TestRestartCommitRaisesOnlyWhenSettled: the commit index rises to the
// second-to-last configuration change above it, and only then; a single
// unsettled change, or validation turned off, leaves it alone.
func TestRestartCommitRaisesOnlyWhenSettled(t *testing.T) {
	normal := func(i uint64) pb.Entry { return pb.Entry{Index: i, Term: 2} }
	for _, tc := range []struct {
		name    string
		commit  uint64
		ents    []pb.Entry
		disable bool
		want    uint64
	}{
		{"no changes", 2, []pb.Entry{normal(2), normal(3)}, false, 2},
		{"one change above commit", 2, []pb.Entry{normal(2), joint(3), normal(4)}, false, 2},
		{"two changes", 2, []pb.Entry{normal(2), joint(3), leave(4)}, false, 3},
		{"two changes, normal entries between", 1, []pb.Entry{normal(2), joint(3), normal(4), leave(5), normal(6)}, false, 3},
		{"three changes", 1, []pb.Entry{joint(2), leave(3), normal(4), joint(5), normal(6)}, false, 3},
		{"one below commit, one above", 3, []pb.Entry{normal(2), joint(3), leave(4)}, false, 3},
		{"validation off", 2, []pb.Entry{normal(2), joint(3), leave(4)}, true, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := restartStorage(t, tc.commit, tc.ents...)
			c := rnConfig(1, s)
			c.DisableConfChangeValidation = tc.disable
			rn := rnNew(t, c)
			if got := rn.BasicStatus().Commit; got != tc.want {
				t.Errorf("commit %d, want %d", got, tc.want)
			}
			if tc.want == tc.commit && !IsEmptyHardState(rn.Ready().HardState) {
				t.Errorf("the first Ready reports a HardState although nothing was raised")
			}
		})
	}
}

// TestRestartCommitReadsOnlyTheTail: the startup scan reads no entry at or
// below the durable commit index, and reads the tail in pages bounded by
// MaxCommittedSizePerReady.
func TestRestartCommitReadsOnlyTheTail(t *testing.T) {
	ents := []pb.Entry{joint(2)}
	for i := uint64(3); i < 100; i++ {
		ents = append(ents, pb.Entry{Index: i, Term: 2, Data: make([]byte, 100)})
	}
	ents = append(ents, leave(100), joint(101))
	s := &recordingStorage{MemoryStorage: restartStorage(t, 50 /* commit */, ents...)}
	c := rnConfig(1, s)
	c.MaxCommittedSizePerReady = 1000
	rn := rnNew(t, c)
	if got := rn.BasicStatus().Commit; got != 100 {
		t.Fatalf("commit %d, want 100", got)
	}
	if len(s.reads) < 5 {
		t.Errorf("read the tail of 51 entries in %d pages, want pages of about 1000 bytes", len(s.reads))
	}
	for _, r := range s.reads {
		if r[0] <= 50 {
			t.Errorf("read [%d, %d), at or below the durable commit index 50", r[0], r[1])
		}
	}
}

// recordingStorage records the ranges Entries is asked for.
type recordingStorage struct {
	*MemoryStorage
	reads [][2]uint64
}

func (s *recordingStorage) Entries(lo, hi, maxSize uint64) ([]pb.Entry, error) {
	s.reads = append(s.reads, [2]uint64{lo, hi})
	return s.MemoryStorage.Entries(lo, hi, maxSize)
}

// restartStorage is the durable state of node 1 of (1 2 3), learner 4: a
// snapshot at index 1, the entries, and a HardState of term 2 with the
// given commit index.
func restartStorage(t *testing.T, commit uint64, ents ...pb.Entry) *MemoryStorage {
	t.Helper()
	s := NewMemoryStorage()
	cs := pb.ConfState{Voters: []uint64{1, 2, 3}, Learners: []uint64{4}}
	if err := s.ApplySnapshot(pb.Snapshot{Metadata: pb.SnapshotMetadata{Index: 1, Term: 1, ConfState: cs}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Append(ents); err != nil {
		t.Fatal(err)
	}
	if err := s.SetHardState(pb.HardState{Term: 2, Vote: 2, Commit: commit}); err != nil {
		t.Fatal(err)
	}
	return s
}

// joint and leave are the entries of replaceOneByFour: entering the joint
// configuration and leaving it.
func joint(i uint64) pb.Entry { return confEntry(i, replaceOneByFour) }
func leave(i uint64) pb.Entry { return confEntry(i, pb.ConfChangeV2{}) }

func confEntry(i uint64, cc pb.ConfChangeV2) pb.Entry {
	data, err := cc.Marshal()
	if err != nil {
		panic(err)
	}
	return pb.Entry{Index: i, Term: 2, Type: pb.EntryConfChangeV2, Data: data}
}
