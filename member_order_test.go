package raft

import (
	"slices"
	"testing"

	pb "github.com/raftkit/raft/raftpb"
	"github.com/raftkit/raft/tracker"
)

// checkMemberOrder fails unless r's member order describes its tracker as
// it is now: the same members in ID order with the same Progress, the same
// voters and the same commit index.
func checkMemberOrder(t *testing.T, what string, r *raft) {
	t.Helper()
	var got, want []uint64
	var gotPrs, wantPrs []*tracker.Progress
	r.order.Visit(func(id uint64, pr *tracker.Progress) { got, gotPrs = append(got, id), append(gotPrs, pr) })
	r.trk.Visit(func(id uint64, pr *tracker.Progress) { want, wantPrs = append(want, id), append(wantPrs, pr) })
	if !slices.Equal(got, want) || !slices.Equal(gotPrs, wantPrs) {
		t.Fatalf("%s: node %x visits %v, tracker has %v", what, r.id, got, want)
	}
	if got, want := r.order.Voters(), r.trk.VoterNodes(); !slices.Equal(got, want) {
		t.Fatalf("%s: node %x has voters %v, tracker %v", what, r.id, got, want)
	}
	if got, want := r.order.Committed(), r.trk.Committed(); got != want {
		t.Fatalf("%s: node %x commits %d, tracker %d", what, r.id, got, want)
	}
}

// TestMemberOrderFollowsConfigurations: every way a configuration is
// installed (at start, by an applied change, simple or joint, and by a
// snapshot) leaves the member order that broadcasts, campaigns and the
// commit rule use in step with the tracker.
func TestMemberOrderFollowsConfigurations(t *testing.T) {
	nw := newTestNet(t, 3, []uint64{4, 5}, nil)
	for _, id := range nw.ids {
		checkMemberOrder(t, "start", nw.node(id).r())
	}
	nw.campaign(1)
	changes := []struct {
		what string
		cc   pb.ConfChangeV2
	}{
		{"add learner 6", pb.ConfChangeV2{Changes: []pb.ConfChangeSingle{{Type: pb.ConfChangeAddLearnerNode, NodeID: 6}}}},
		{"promote 4", pb.ConfChangeV2{Changes: []pb.ConfChangeSingle{{Type: pb.ConfChangeAddNode, NodeID: 4}}}},
		{"enter joint: 5 in, 2 out", pb.ConfChangeV2{Transition: pb.ConfChangeTransitionJointExplicit, Changes: []pb.ConfChangeSingle{
			{Type: pb.ConfChangeAddNode, NodeID: 5}, {Type: pb.ConfChangeRemoveNode, NodeID: 2}}}},
		{"leave joint", pb.ConfChangeV2{}},
		{"remove 4", pb.ConfChangeV2{Changes: []pb.ConfChangeSingle{{Type: pb.ConfChangeRemoveNode, NodeID: 4}}}},
		{"remove 6", pb.ConfChangeV2{Changes: []pb.ConfChangeSingle{{Type: pb.ConfChangeRemoveNode, NodeID: 6}}}},
	}
	for _, c := range changes {
		if err := nw.node(1).rn.ProposeConfChange(c.cc); err != nil {
			t.Fatalf("%s: %v", c.what, err)
		}
		nw.settle()
		for _, id := range nw.ids {
			checkMemberOrder(t, c.what, nw.node(id).r())
		}
	}
	if got := nw.node(1).r().order.Voters(); !slices.Equal(got, []uint64{1, 3, 5}) {
		t.Fatalf("leader's voters after the changes: %v, want [1 3 5]", got)
	}

	r := nw.node(2).r() // removed, so that nothing it is sent changes it
	snap := pb.Snapshot{Metadata: pb.SnapshotMetadata{Index: 100, Term: r.Term,
		ConfState: pb.ConfState{Voters: []uint64{2, 6, 7}, Learners: []uint64{9}}}}
	if !r.adoptSnapshot(snap) {
		t.Fatal("snapshot not restored")
	}
	checkMemberOrder(t, "snapshot", r)
}
