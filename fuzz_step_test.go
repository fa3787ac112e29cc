package raft

import (
	"testing"

	pb "github.com/raftkit/raft/raftpb"
)

// fuzzNode returns node 1 of a three-node group (with learner 4) in role
// role, with a few entries in its log.
func fuzzNode(t *testing.T, role StateType, readOnly ReadOnlyOption) *raft {
	nw := newTestNet(t, 3, []uint64{4}, func(c *Config) {
		c.ReadOnlyOption = readOnly
		c.PreVote = role == StatePreCandidate
		c.CheckQuorum = true
	})
	nw.campaign(1)
	_ = nw.propose(1, "a")
	r := nw.node(1).r()
	switch role {
	case StateFollower:
		r.toFollower(r.Term, 2)
	case StateCandidate:
		r.toFollower(r.Term, None)
		r.toCandidate()
	case StatePreCandidate:
		r.toFollower(r.Term, None)
		r.toPreCandidate()
	}
	return r
}

// FuzzStep steps arbitrary messages, decoded from the fuzzer's bytes, into
// a node in each role. Whatever a peer sends must never make Step panic.
// Local message types are excluded the way RawNode.Step excludes them,
// except when they claim to come from a storage thread, which RawNode
// lets through.
func FuzzStep(f *testing.F) {
	seeds := []pb.Message{
		{Type: pb.MsgApp, From: 2, Term: 1, Index: 3, LogTerm: 1, Commit: 3, Entries: []pb.Entry{{Index: 4, Term: 1}}},
		{Type: pb.MsgAppResp, From: 2, Term: 1, Index: 3, Reject: true, RejectHint: 1, LogTerm: 1},
		{Type: pb.MsgVote, From: 3, Term: 9, Index: 100, LogTerm: 9},
		{Type: pb.MsgPreVoteResp, From: 3, Term: 2},
		{Type: pb.MsgSnap, From: 2, Term: 3, Snapshot: &pb.Snapshot{Metadata: pb.SnapshotMetadata{Index: 50, Term: 3, ConfState: pb.ConfState{Voters: []uint64{1, 2}}}}},
		{Type: pb.MsgHeartbeat, From: 2, Term: 1, Commit: 2, Context: []byte("x")},
		{Type: pb.MsgReadIndex, From: 2, Entries: []pb.Entry{{Data: []byte("r")}}},
		{Type: pb.MsgTransferLeader, From: 3},
		{Type: pb.MsgTimeoutNow, From: 2, Term: 1},
		{Type: pb.MsgStorageAppendResp, From: LocalAppendThread, Term: 1, Index: 3, LogTerm: 1},
		{Type: pb.MsgStorageApplyResp, From: LocalApplyThread, Entries: []pb.Entry{{Index: 3}}},
	}
	for _, m := range seeds {
		b, err := m.Marshal()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, uint8(0))
	}
	f.Fuzz(func(t *testing.T, data []byte, pick uint8) {
		var m pb.Message
		if err := m.Unmarshal(data); err != nil {
			return
		}
		if IsLocalMsg(m.Type) && !IsLocalMsgTarget(m.From) {
			return
		}
		roles := []StateType{StateFollower, StateCandidate, StatePreCandidate, StateLeader}
		r := fuzzNode(t, roles[int(pick)%len(roles)], ReadOnlyOption(pick>>2)%2)
		_ = r.Step(m)
		// A second copy exercises the state the first one left behind.
		_ = r.Step(m)
	})
}
