package kvservice

import (
	"bytes"
	"encoding/binary"
	"sync/atomic"
	"testing"

	"go.uber.org/zap"

	"github.com/raftkit/raft"
	"github.com/raftkit/raft/raftpb"
)

// TestReadContextsOfTwoMembersDiffer has members 2 and 3 make a read each
// with their counters at the same value (they are seeded from the start
// time, so they can meet) and sends both to a leader that holds the first
// when the second comes: both are answered, where equal contexts would
// have the leader take the second for the first asked again and answer
// member 2 only.
func TestReadContextsOfTwoMembersDiffer(t *testing.T) {
	m := newMetrics()
	var seq2, seq3 atomic.Uint64
	seq2.Store(41 << 8)
	seq3.Store(41 << 8)
	ctx2, _ := newRead(2, &seq2, m)
	ctx3, _ := newRead(3, &seq3, m)
	if bytes.Equal(ctx2, ctx3) {
		t.Fatalf("members 2 and 3 made the same read context %x", ctx2)
	}
	if len(ctx2) != readCtxLen || binary.BigEndian.Uint64(ctx2) != 2 {
		t.Errorf("read context %x: want member ID 2 then the number, %d bytes", ctx2, readCtxLen)
	}

	rn, term := newTestLeader(t)
	for _, r := range []struct {
		from uint64
		ctx  []byte
	}{{2, ctx2}, {3, ctx3}} {
		if err := rn.Step(raftpb.Message{Type: raftpb.MsgReadIndex, From: r.from, To: 1,
			Entries: []raftpb.Entry{{Data: r.ctx}}}); err != nil {
			t.Fatal(err)
		}
	}
	// Member 2 confirms the leader for the rounds of both reads.
	for _, hb := range drain(rn) {
		if hb.Type == raftpb.MsgHeartbeat && hb.To == 2 {
			_ = rn.Step(raftpb.Message{Type: raftpb.MsgHeartbeatResp, From: 2, To: 1, Term: term, Context: hb.Context})
		}
	}
	answered := map[uint64]bool{}
	for _, msg := range drain(rn) {
		if msg.Type == raftpb.MsgReadIndexResp {
			answered[msg.To] = true
		}
	}
	if !answered[2] || !answered[3] {
		t.Fatalf("reads answered to members %v, want 2 and 3", answered)
	}
}

// newTestLeader returns member 1 of a 3-voter group, elected by member
// 2's vote and with an entry of its term committed (a leader serves reads
// only then), and its term.
func newTestLeader(t *testing.T) (*raft.RawNode, uint64) {
	t.Helper()
	st := raft.NewMemoryStorage()
	if err := st.ApplySnapshot(raftpb.Snapshot{Metadata: raftpb.SnapshotMetadata{Index: 1, Term: 1,
		ConfState: raftpb.ConfState{Voters: []uint64{1, 2, 3}}}}); err != nil {
		t.Fatal(err)
	}
	rn, err := raft.NewRawNode(&raft.Config{ID: 1, ElectionTick: 10, HeartbeatTick: 1, Storage: st,
		MaxSizePerMsg: 1 << 20, MaxInflightMsgs: 16, Logger: raft.NewZapLogger(zap.NewNop())})
	if err != nil {
		t.Fatal(err)
	}
	persist := func() []raftpb.Message {
		var out []raftpb.Message
		for rn.HasReady() {
			rd := rn.Ready()
			if err := st.Append(rd.Entries); err != nil {
				t.Fatal(err)
			}
			if !raft.IsEmptyHardState(rd.HardState) {
				_ = st.SetHardState(rd.HardState)
			}
			out = append(out, rd.Messages...)
			rn.Advance(rd)
		}
		return out
	}
	if err := rn.Campaign(); err != nil {
		t.Fatal(err)
	}
	persist()
	term := rn.BasicStatus().Term
	_ = rn.Step(raftpb.Message{Type: raftpb.MsgVoteResp, From: 2, To: 1, Term: term})
	persist()
	last, _ := st.LastIndex()
	_ = rn.Step(raftpb.Message{Type: raftpb.MsgAppResp, From: 2, To: 1, Term: term, Index: last})
	persist()
	if bs := rn.BasicStatus(); bs.RaftState != raft.StateLeader || bs.Commit != last {
		t.Fatalf("test leader: %+v, want leader with commit %d", bs, last)
	}
	return rn, term
}

// drain handles rn's Readys (nothing to persist: the reads add no
// entries) and returns their messages.
func drain(rn *raft.RawNode) []raftpb.Message {
	var out []raftpb.Message
	for rn.HasReady() {
		rd := rn.Ready()
		out = append(out, rd.Messages...)
		rn.Advance(rd)
	}
	return out
}
