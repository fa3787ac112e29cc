package raft

import (
	"testing"

	"github.com/raftkit/raft/quorum"
	pb "github.com/raftkit/raft/raftpb"
)

// takeQueued removes the queued messages of type typ from the network and
// returns them, undelivered.
func (nw *testNet) takeQueued(typ pb.MessageType) []pb.Message {
	var taken, kept []pb.Message
	for _, m := range nw.queue {
		if m.Type == typ {
			taken = append(taken, m)
		} else {
			kept = append(kept, m)
		}
	}
	nw.queue = kept
	return taken
}

// A heartbeat answer confirms only the read round it was sent for. Here a
// read with context "x" is served by the answer of node 2, while node 3's
// answer to the same round is delayed. The application retries a read with
// the same context on a leader that has since lost touch with its
// followers; the late answer from node 3 must not confirm the retry (with
// the leader's own vote it would make a quorum): that would serve a read
// without any follower having heard of it, and a deposed leader could
// answer from a stale state. Matching answers by the read's context, as
// etcd/raft v3.6 does, serves it.
func TestReadIndexLateHeartbeatAnswerDoesNotConfirmRetry(t *testing.T) {
	nw := newTestNet(t, 3, nil, nil)
	nw.campaign(1)
	leader := nw.node(1)

	leader.rn.ReadIndex([]byte("x"))
	nw.handleReady(1)
	heartbeats := nw.takeQueued(pb.MsgHeartbeat)
	if len(heartbeats) != 2 {
		t.Fatalf("heartbeats %v", heartbeats)
	}
	for _, m := range heartbeats {
		if err := nw.node(m.To).rn.Step(m); err != nil {
			t.Fatal(err)
		}
		nw.handleReady(m.To)
	}
	var late pb.Message
	for _, m := range nw.takeQueued(pb.MsgHeartbeatResp) {
		if m.From == 3 {
			late = m
			continue
		}
		if err := leader.rn.Step(m); err != nil {
			t.Fatal(err)
		}
	}
	nw.handleReady(1)
	if rs := leader.readStates; len(rs) != 1 || string(rs[0].RequestCtx) != "x" {
		t.Fatalf("first read not served once: %v", rs)
	}
	if late.Type != pb.MsgHeartbeatResp {
		t.Fatal("no answer from node 3 to hold back")
	}

	nw.isolate(1)
	leader.rn.ReadIndex([]byte("x"))
	nw.settle() // the retry's heartbeats are lost
	if err := leader.rn.Step(late); err != nil {
		t.Fatal(err)
	}
	nw.settle()
	if rs := leader.readStates; len(rs) != 1 {
		t.Fatalf("a late answer to the first round served the retry: %v", rs)
	}

	// Once the retry's own round is answered, it is served.
	nw.heal()
	nw.tick(1, 1) // a heartbeat round carries the pending read's token
	if rs := leader.readStates; len(rs) != 2 || string(rs[1].RequestCtx) != "x" {
		t.Fatalf("retry not served after its own round: %v", rs)
	}
}

// Round tokens never repeat for one leader: each registration gets the
// next sequence number of the term, and a duplicate of a pending request
// reuses the pending round.
func TestReadIndexRoundTokens(t *testing.T) {
	ro := newReadOnly(ReadOnlySafe)
	req := func(ctx string) *pb.Message {
		return &pb.Message{Type: pb.MsgReadIndex, Entries: []pb.Entry{{Data: []byte(ctx)}}}
	}
	a := ro.startRound(5, req("a"), 7)
	dup := ro.startRound(6, req("a"), 7)
	b := ro.startRound(6, req("b"), 7)
	if a != dup || a.index != 5 {
		t.Fatalf("duplicate registered anew: %+v %+v", a, dup)
	}
	if a.round == b.round || a.round == (roundID{}) || string(a.ctx) != string(a.round[:]) {
		t.Fatalf("round tokens %q %q", a.round, b.round)
	}
	if a.round != roundToken(7, 1) || b.round != roundToken(7, 2) {
		t.Fatalf("tokens do not encode (term, sequence)")
	}
	if got := ro.lastPendingRound(); string(got) != string(b.round[:]) {
		t.Fatalf("last pending round %q, want %q", got, b.round)
	}
	voters := quorum.JointConfig{quorum.MajorityConfig{1: {}, 2: {}, 3: {}}}
	// An answer naming the context instead of the round confirms nothing.
	if served := ro.confirm(2, []byte("a"), voters); served != nil || len(a.acks) != 0 {
		t.Fatalf("context accepted as a round: %v %v", served, a.acks)
	}
	// One voter of three is no quorum; the second confirmation serves b and
	// everything queued before it.
	if served := ro.confirm(1, b.round[:], voters); served != nil {
		t.Fatalf("one confirmation of three served %v", served)
	}
	served := ro.confirm(2, b.round[:], voters)
	if len(served) != 2 || served[0] != a || served[1] != b {
		t.Fatalf("confirm served %v", served)
	}
	ro.recycle(served)
	if len(ro.byRound) != 0 || len(ro.pendingReadIndex) != 0 || len(ro.readIndexQueue) != 0 {
		t.Fatalf("queue not emptied: %+v", ro)
	}
	again := ro.startRound(9, req("a"), 7)
	if again.round != roundToken(7, 3) {
		t.Fatalf("a new registration of a served context reused a round")
	}
}
