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

// TestReadStatesSurviveLaterReads checks the ownership side of the read
// state array reuse and of readOnly's recycled request statuses: the
// ReadStates a Ready handed out must not change while the leader serves
// later reads (served singly, in bursts and out of order), even when the
// application appends to them, and every read is answered once, with its
// own context, in order.
func TestReadStatesSurviveLaterReads(t *testing.T) {
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
		// Commit the leader's empty entry, so that reads are served at once.
		drain := func() []Ready {
			var rds []Ready
			for rn.HasReady() {
				rd := rn.Ready()
				_ = s.Append(rd.Entries)
				rn.Advance(rd)
				rds = append(rds, rd)
				for _, m := range rd.Messages {
					switch m.Type {
					case pb.MsgApp:
						if n := len(m.Entries); n > 0 {
							_ = rn.Step(pb.Message{From: m.To, To: 1, Type: pb.MsgAppResp, Term: m.Term, Index: m.Entries[n-1].Index})
						}
					case pb.MsgHeartbeat:
						// Only one follower answers: a quorum of three.
						if m.To == 2 {
							_ = rn.Step(pb.Message{From: 2, To: 1, Type: pb.MsgHeartbeatResp, Term: m.Term, Context: m.Context})
						}
					}
				}
			}
			return rds
		}
		drain()
		type kept struct {
			slice []ReadState
			ctxs  []string
			idxs  []uint64
		}
		var all []kept
		var answered []string
		for i := 0; i < 100; i++ {
			burst := 1 + i%4
			for j := 0; j < burst; j++ {
				rn.ReadIndex([]byte{byte(i), byte(j)})
			}
			for _, rd := range drain() {
				if len(rd.ReadStates) == 0 {
					continue
				}
				k := kept{slice: rd.ReadStates}
				for _, rs := range rd.ReadStates {
					k.ctxs = append(k.ctxs, string(rs.RequestCtx))
					k.idxs = append(k.idxs, rs.Index)
					answered = append(answered, string(rs.RequestCtx))
				}
				all = append(all, k)
				_ = append(rd.ReadStates, ReadState{Index: 999, RequestCtx: []byte("x")})
			}
		}
		var want []string
		for i := 0; i < 100; i++ {
			for j := 0; j < 1+i%4; j++ {
				want = append(want, string([]byte{byte(i), byte(j)}))
			}
		}
		if len(answered) != len(want) {
			t.Fatalf("voters=%d: %d reads answered, want %d", voters, len(answered), len(want))
		}
		for i := range want {
			if answered[i] != want[i] {
				t.Fatalf("voters=%d: read %d answered as %q, want %q", voters, i, answered[i], want[i])
			}
		}
		for i, k := range all {
			for j, rs := range k.slice {
				if string(rs.RequestCtx) != k.ctxs[j] || rs.Index != k.idxs[j] {
					t.Fatalf("voters=%d: Ready %d read state %d changed to %+v (was ctx %q)", voters, i, j, rs, k.ctxs[j])
				}
			}
		}
	}
}
