package main

import (
	"testing"

	raft "github.com/raftkit/raft"
	"github.com/raftkit/raft/benchmarks/shared"
	pb "github.com/raftkit/raft/raftpb"
)

// TestAsyncLoopReusesMessageSlices: in the fsync rows' loop, a Ready's
// messages to peers and the append thread's responses to peers go to send
// through buffers kept across rounds; a round allocates no slice of its own.
func TestAsyncLoopReusesMessageSlices(t *testing.T) {
	sent := 0
	n := &node{id: 1, opts: shared.Options{SnapshotEvery: 1 << 62},
		send: func(ms []pb.Message) { sent += len(ms) }}
	msgs := []pb.Message{{Type: pb.MsgApp, To: 2}, {Type: pb.MsgApp, To: 3}, {Type: pb.MsgHeartbeat, To: 2}}
	rd := raft.Ready{Messages: msgs}
	ready := func() {
		if err := n.handleAsync(rd); err != nil {
			t.Fatal(err)
		}
	}
	deliver := func() { n.deliver(msgs) }
	ready()
	deliver()
	if a := testing.AllocsPerRun(100, ready); a != 0 {
		t.Errorf("handleAsync allocates %.0f times per Ready, want 0", a)
	}
	if a := testing.AllocsPerRun(100, deliver); a != 0 {
		t.Errorf("deliver allocates %.0f times per group, want 0", a)
	}
	if want := 2 * (1 + 101) * len(msgs); sent != want {
		t.Errorf("sent %d messages, want %d", sent, want)
	}
}
