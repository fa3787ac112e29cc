package raft

import (
	"testing"

	pb "github.com/raftkit/raft/raftpb"
)

// FuzzStepMoreRoles complements FuzzStep (which covers follower, candidate,
// pre-candidate and leader of a synchronous group) with the roles it does
// not reach: a learner, and each role with AsyncStorageWrites, where storage
// responses arrive through Step. It steps arbitrary messages through
// RawNode.Step, as an application would, then drains the Ready so that what
// the message left behind is also handed out; none of it may panic.
func FuzzStepMoreRoles(f *testing.F) {
	for _, m := range []pb.Message{
		{Type: pb.MsgApp, From: 1, Term: 1, Index: 3, LogTerm: 1, Commit: 4, Entries: []pb.Entry{{Index: 4, Term: 1, Data: []byte("x")}}},
		{Type: pb.MsgSnap, From: 1, Term: 2, Snapshot: &pb.Snapshot{Metadata: pb.SnapshotMetadata{Index: 9, Term: 2, ConfState: pb.ConfState{Voters: []uint64{1, 2, 3}, Learners: []uint64{4}}}}},
		{Type: pb.MsgTimeoutNow, From: 1, Term: 1},
		{Type: pb.MsgStorageAppendResp, From: LocalAppendThread, Term: 1, Index: 3, LogTerm: 1},
		{Type: pb.MsgStorageApplyResp, From: LocalApplyThread, Entries: []pb.Entry{{Index: 2, Term: 1}}},
		{Type: pb.MsgHeartbeat, From: 1, Term: 1, Commit: 3},
		{Type: pb.MsgVote, From: 2, Term: 5, Index: 3, LogTerm: 1},
	} {
		b, err := m.Marshal()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, uint8(0))
		f.Add(b, uint8(1))
	}
	f.Fuzz(func(t *testing.T, data []byte, pick uint8) {
		var m pb.Message
		if err := m.Unmarshal(data); err != nil {
			return
		}
		async := pick&1 != 0
		nw := newTestNet(t, 3, []uint64{4}, func(c *Config) { c.AsyncStorageWrites = async })
		if !async {
			nw.campaign(1)
			_ = nw.propose(1, "a")
		}
		// Pick a node: the learner, or (async) a voter in its initial
		// follower role, or a candidate.
		id := []uint64{4, 2, 3}[int(pick>>1)%3]
		n := nw.node(id)
		if id == 3 {
			_ = n.rn.Campaign()
		}
		m.To = id
		_ = n.rn.Step(m)
		_ = n.rn.Step(m)
		for i := 0; i < 3 && n.rn.HasReady(); i++ {
			rd := n.rn.Ready()
			if !async {
				n.rn.Advance(rd)
			}
		}
	})
}
