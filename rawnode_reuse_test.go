package raft

import (
	"testing"

	pb "github.com/raftkit/raft/raftpb"
)

// TestReadyContentsSurviveLaterWork checks the ownership side of the buffer
// reuse in RawNode (proposal entries, outbox and unstable arrays): what a
// Ready handed out must not change while raft goes on proposing, sending
// and persisting, even when the application appends to the slices.
func TestReadyContentsSurviveLaterWork(t *testing.T) {
	for _, voters := range []int{1, 3} {
		ids := make([]uint64, voters)
		for i := range ids {
			ids[i] = uint64(i + 1)
		}
		s := NewMemoryStorage()
		if err := s.ApplySnapshot(pb.Snapshot{Metadata: pb.SnapshotMetadata{Index: 1, Term: 1, ConfState: pb.ConfState{Voters: ids}}}); err != nil {
			t.Fatal(err)
		}
		rn := rnNew(t, rnConfig(1, s))
		rn.raft.becomeCandidate()
		rn.raft.becomeLeader()
		type kept struct {
			ents, msgs []string
			entSlice   []pb.Entry
			msgSlice   []pb.Message
		}
		var all []kept
		snapshot := func(rd Ready) kept {
			k := kept{entSlice: rd.Entries, msgSlice: rd.Messages}
			for _, e := range rd.Entries {
				k.ents = append(k.ents, DescribeEntry(e, nil))
			}
			for _, m := range rd.Messages {
				k.msgs = append(k.msgs, DescribeMessage(m, nil))
			}
			return k
		}
		for i := 0; i < 200; i++ {
			if err := rn.Propose([]byte{byte(i)}); err != nil {
				t.Fatal(err)
			}
			rd := rn.Ready()
			all = append(all, snapshot(rd))
			_ = s.Append(rd.Entries)
			// The application may append to what it was handed.
			_ = append(rd.Entries, pb.Entry{Index: 999})
			_ = append(rd.Messages, pb.Message{Type: pb.MsgHup})
			rn.Advance(rd)
			// Followers acknowledge whatever was sent to them.
			for _, m := range rd.Messages {
				if m.Type == pb.MsgApp && len(m.Entries) > 0 {
					_ = rn.Step(pb.Message{From: m.To, To: 1, Type: pb.MsgAppResp, Term: m.Term, Index: m.Entries[len(m.Entries)-1].Index})
				}
			}
		}
		for i, k := range all {
			now := snapshot(Ready{Entries: k.entSlice, Messages: k.msgSlice})
			for j := range k.ents {
				if now.ents[j] != k.ents[j] {
					t.Fatalf("voters=%d: Ready %d entry %d changed from %s to %s", voters, i, j, k.ents[j], now.ents[j])
				}
			}
			for j := range k.msgs {
				if now.msgs[j] != k.msgs[j] {
					t.Fatalf("voters=%d: Ready %d message %d changed from %s to %s", voters, i, j, k.msgs[j], now.msgs[j])
				}
			}
		}
	}
}
