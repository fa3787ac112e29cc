package raft

import (
	"testing"

	pb "github.com/raftkit/raft/raftpb"
)

// TestSetFastFailoverOnNode checks that raft.SetFastFailover reaches the
// RawNode of a Node from StartNode, and that a Node of another kind is
// refused rather than ignored.
func TestSetFastFailoverOnNode(t *testing.T) {
	st := NewMemoryStorage()
	n := StartNode(&Config{ID: 1, ElectionTick: 10, HeartbeatTick: 1, Storage: st,
		MaxSizePerMsg: 1 << 20, MaxInflightMsgs: 16}, []Peer{{ID: 1}, {ID: 2}})
	defer n.Stop()
	if err := SetFastFailover(n, true); err != nil {
		t.Fatal(err)
	}
	nd := n.(*node)
	nd.mu.Lock()
	on := nd.rn.FastFailover()
	nd.mu.Unlock()
	if !on {
		t.Fatal("SetFastFailover(n, true) left the RawNode without it")
	}
	if err := SetFastFailover(notANode{}, true); err == nil {
		t.Fatal("SetFastFailover accepted a Node it cannot reach")
	}
}

// notANode is a Node of the application's own making.
type notANode struct{ Node }

// TestUnreachableReportOnlyAboutTheLeader checks the report's guards: only
// a report about the follower's own leader, with the option on, on a node
// that may campaign, shortens the timeout.
func TestUnreachableReportOnlyAboutTheLeader(t *testing.T) {
	for _, tc := range []struct {
		name    string
		on      bool
		from    uint64
		learner bool
		want    int
	}{
		{"off", false, 1, false, 19},
		{"not the leader", true, 3, false, 19},
		{"learner", true, 1, true, 19},
		{"the leader", true, 1, false, 11}, // ElectionTick + rank 1: voter 2 precedes 3
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := NewMemoryStorage()
			cs := pb.ConfState{Voters: []uint64{1, 2, 3}}
			if tc.learner {
				cs = pb.ConfState{Voters: []uint64{1, 2}, Learners: []uint64{3}}
			}
			if err := st.ApplySnapshot(pb.Snapshot{Metadata: pb.SnapshotMetadata{Index: 1, Term: 1, ConfState: cs}}); err != nil {
				t.Fatal(err)
			}
			rn, err := NewRawNode(&Config{ID: 3, ElectionTick: 10, HeartbeatTick: 1, Storage: st, MaxSizePerMsg: 1 << 20, MaxInflightMsgs: 16})
			if err != nil {
				t.Fatal(err)
			}
			rn.SetFastFailover(tc.on)
			r := rn.raft
			r.toFollower(1, 1)
			r.randomizedElectionTimeout = 19
			// A peer cannot send the report: Step refuses local messages.
			if err := rn.Step(pb.Message{Type: pb.MsgUnreachable, From: tc.from}); err != ErrStepLocalMsg {
				t.Fatalf("Step of a MsgUnreachable: %v, want ErrStepLocalMsg", err)
			}
			if r.randomizedElectionTimeout != 19 {
				t.Fatalf("a stepped MsgUnreachable changed the timeout to %d", r.randomizedElectionTimeout)
			}
			rn.ReportUnreachable(tc.from)
			if r.randomizedElectionTimeout != tc.want {
				t.Fatalf("timeout %d, want %d", r.randomizedElectionTimeout, tc.want)
			}
		})
	}
}
