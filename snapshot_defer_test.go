package raft

import (
	"slices"
	"testing"

	pb "github.com/raftkit/raft/raftpb"
)

// A snapshot that arrives while the application still holds a configuration
// change it has not applied is deferred: installing the snapshot's
// configuration first would have that change applied on top of a
// configuration it was never meant for (here a simple change on a joint
// configuration, which panics). Once the change is applied, the snapshot is
// installed. Simulator kv seeds 23307 and 31924 found it.
func TestSnapshotDeferredWhileConfChangeApplies(t *testing.T) {
	s := NewMemoryStorage()
	_ = s.ApplySnapshot(pb.Snapshot{Metadata: pb.SnapshotMetadata{Index: 1, Term: 1,
		ConfState: pb.ConfState{Voters: []uint64{1, 2, 3}}}})
	rn, err := NewRawNode(netConfig(1, s))
	if err != nil {
		t.Fatal(err)
	}
	cc := pb.ConfChange{Type: pb.ConfChangeAddLearnerNode, NodeID: 5}
	data, _ := cc.Marshal()
	ent := pb.Entry{Term: 2, Index: 2, Type: pb.EntryConfChange, Data: data}
	_ = rn.Step(pb.Message{From: 2, To: 1, Type: pb.MsgApp, Term: 2, LogTerm: 1, Index: 1,
		Entries: []pb.Entry{ent}, Commit: 2})
	rd := rn.Ready()
	if len(rd.CommittedEntries) != 1 || rd.CommittedEntries[0].Type != pb.EntryConfChange {
		t.Fatalf("want the conf change handed out, got %v", rd.CommittedEntries)
	}
	_ = s.Append(rd.Entries)

	// The leader's snapshot is joint; the conf change is still being applied.
	joint := pb.ConfState{Voters: []uint64{1, 2, 3, 4}, VotersOutgoing: []uint64{1, 2, 3}, Learners: []uint64{5}}
	snap := pb.Snapshot{Metadata: pb.SnapshotMetadata{Index: 10, Term: 2, ConfState: joint}}
	_ = rn.Step(pb.Message{From: 2, To: 1, Type: pb.MsgSnap, Term: 2, Snapshot: &snap})
	if st := rn.Status(); len(st.Config.Voters[1]) != 0 || st.Commit != 2 {
		t.Fatalf("snapshot installed while a conf change was being applied: %+v", st.Config)
	}
	got := rn.ApplyConfChange(cc) // panics if the snapshot's joint config is active
	if !slices.Equal(got.Learners, []uint64{5}) || len(got.VotersOutgoing) != 0 {
		t.Fatalf("conf change applied to %v", got)
	}
	rn.Advance(rd)

	_ = rn.Step(pb.Message{From: 2, To: 1, Type: pb.MsgSnap, Term: 2, Snapshot: &snap})
	rd = rn.Ready()
	if rd.Snapshot.Metadata.Index != 10 {
		t.Fatalf("snapshot not installed once the change was applied: %+v", rd.Snapshot.Metadata)
	}
	if err := rn.raft.trk.ConfState().Equivalent(joint); err != nil {
		t.Fatal(err)
	}
}
