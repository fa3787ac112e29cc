package raft

import (
	"fmt"
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
	ro := newReadQueue(ReadOnlySafe)
	req := func(ctx string) *pb.Message {
		return &pb.Message{Type: pb.MsgReadIndex, Entries: []pb.Entry{{Data: []byte(ctx)}}}
	}
	a := ro.startRound(5, req("a"), 1, 7)
	dup := ro.startRound(6, req("a"), 1, 7)
	b := ro.startRound(6, req("b"), 1, 7)
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
	if len(ro.byHash) != 0 || len(ro.queue) != 0 {
		t.Fatalf("queue not emptied: %+v", ro)
	}
	again := ro.startRound(9, req("a"), 1, 7)
	if again.round != roundToken(7, 3) {
		t.Fatalf("a new registration of a served context reused a round")
	}
}

// Pending reads are found by their context's hash and then compared in
// full: contexts that collide share a chain, a duplicate is recognized
// wherever it sits in the chain, and serving requests unlinks them from
// any place in it, leaving the others findable.
func TestReadOnlyContextHashChains(t *testing.T) {
	ro := newReadQueue(ReadOnlySafe)
	req := func(ctx string) *pb.Message {
		return &pb.Message{Type: pb.MsgReadIndex, Entries: []pb.Entry{{Data: []byte(ctx)}}}
	}
	const collide = 7
	start := func(ctx string, h uint64) *readIndexStatus { return ro.startHashedRound(h, 5, req(ctx), 1, 3) }
	a, b, c, d := start("a", collide), start("b", collide), start("c", collide), start("d", collide)
	e := start("e", collide+1)
	for _, rs := range []*readIndexStatus{a, b, c, d, e} {
		if got := start(string(rs.context()), rs.hash); got != rs {
			t.Fatalf("duplicate of %q registered anew", rs.context())
		}
	}
	if len(ro.queue) != 5 || len(ro.byHash) != 2 {
		t.Fatalf("queue %d, chains %d; want 5 and 2", len(ro.queue), len(ro.byHash))
	}
	voters := quorum.JointConfig{quorum.MajorityConfig{1: {}, 2: {}, 3: {}}}
	ro.confirm(1, b.round[:], voters)
	served := ro.confirm(2, b.round[:], voters)
	if len(served) != 2 || served[0] != a || served[1] != b {
		t.Fatalf("confirm served %v, want a and b", served)
	}
	ro.recycle(served)
	// a and b sat at the end of the chain (the newest is its head).
	if got := start("d", collide); got != d {
		t.Fatal("d lost from its chain")
	}
	if got := start("c", collide); got != c {
		t.Fatal("c lost from its chain")
	}
	if got := start("a", collide); got == c || got == d || string(got.context()) != "a" || got.seq != 6 {
		t.Fatalf("a served read's context was still pending: %+v", got)
	}
	ro.confirm(1, ro.lastPendingRound(), voters)
	if served := ro.confirm(3, ro.lastPendingRound(), voters); len(served) != 4 {
		t.Fatalf("served %d, want c, d, e and the new a", len(served))
	}
	if len(ro.queue) != 0 || len(ro.byHash) != 0 {
		t.Fatalf("left queued %d, chains %d", len(ro.queue), len(ro.byHash))
	}
}

// A RawNode leader of three voters serves safe reads without allocating
// per read in steady state: the request's entry, its pending status, its
// round token and its place in the pending index all reuse memory (one
// token chunk per tokenChunk rounds, one read state array per few Readys).
func TestSafeReadRoundAllocations(t *testing.T) {
	rn, s := rnLeader(t, true, 1, 2, 3)
	for i := 0; i < 3; i++ {
		exchange(t, rn, s, []byte("x")) // commit in the term; followers replicate
	}
	rctx := []byte("read")
	served := 0
	read := func() {
		rn.ReadIndex(rctx)
		for rn.HasReady() {
			rd := rn.Ready()
			served += len(rd.ReadStates)
			rn.Advance(rd)
			for i := range rd.Messages {
				m := &rd.Messages[i]
				if m.Type == pb.MsgHeartbeat {
					_ = rn.Step(pb.Message{From: m.To, To: 1, Type: pb.MsgHeartbeatResp, Term: m.Term, Context: m.Context})
				}
			}
		}
	}
	for i := 0; i < 100; i++ {
		read() // warm-up: arrays reach their steady sizes
	}
	allocs := testing.AllocsPerRun(1000, read)
	if served != 100+1001 {
		t.Fatalf("%d reads served, want %d", served, 1101)
	}
	if allocs > 0.25 {
		t.Fatalf("%.3f allocations per read, want at most 0.25", allocs)
	}
}

// TestLentReadStatesAllocateNothing checks the point of LendReadStates: a
// one-voter leader answering reads one Ready at a time reuses two read
// state arrays instead of allocating one every few reads; not lending, a
// run of eight reads needs a new array.
func TestLentReadStatesAllocateNothing(t *testing.T) {
	for _, lend := range []bool{true, false} {
		rn, _ := rnLeader(t, true, 1)
		if lend {
			rn.LendReadStates()
		}
		rctx := []byte("read")
		served := 0
		reads := func() {
			for i := 0; i < readStateChunk; i++ {
				rn.ReadIndex(rctx)
				for rn.HasReady() {
					rd := rn.Ready()
					served += len(rd.ReadStates)
					rn.Advance(rd)
				}
			}
		}
		for i := 0; i < 10; i++ {
			reads() // warm-up
		}
		allocs := testing.AllocsPerRun(100, reads)
		if want := (10 + 101) * readStateChunk; served != want {
			t.Fatalf("lend=%t: %d reads served, want %d", lend, served, want)
		}
		if lend && allocs != 0 {
			t.Fatalf("lending: %.0f allocations per %d reads, want none", allocs, readStateChunk)
		}
		if !lend && allocs < 1 {
			t.Fatalf("not lending: %.0f allocations per %d reads; the arrays handed out were reused", allocs, readStateChunk)
		}
	}
}

// TestLentReadStatesSurviveUntilNextReady checks the ownership side of
// LendReadStates: a Ready's read states stay intact through Advance and
// later reads until the next Ready is taken, and then the array serves
// raft again without the contexts it carried.
func TestLentReadStatesSurviveUntilNextReady(t *testing.T) {
	rn, _ := rnLeader(t, true, 1)
	rn.LendReadStates()
	var prev []ReadState
	var prevCtx []string
	for i := 0; i < 50; i++ {
		for j := 0; j <= i%3; j++ {
			rn.ReadIndex([]byte(fmt.Sprintf("r%d.%d", i, j)))
		}
		for k := range prev {
			if string(prev[k].RequestCtx) != prevCtx[k] {
				t.Fatalf("Ready %d read state %d changed to %q before the next Ready, want %q", i-1, k, prev[k].RequestCtx, prevCtx[k])
			}
		}
		rd := rn.Ready()
		if len(rd.ReadStates) != i%3+1 {
			t.Fatalf("Ready %d has %d read states, want %d", i, len(rd.ReadStates), i%3+1)
		}
		prevCtx = prevCtx[:0]
		for j, rs := range rd.ReadStates {
			if want := fmt.Sprintf("r%d.%d", i, j); string(rs.RequestCtx) != want {
				t.Fatalf("Ready %d read state %d is %q, want %q", i, j, rs.RequestCtx, want)
			}
			prevCtx = append(prevCtx, string(rs.RequestCtx))
		}
		_ = append(rd.ReadStates, ReadState{Index: 999}) // capped: must not write raft's array
		prev = rd.ReadStates
		rn.Advance(rd)
	}
	for i, rs := range rn.raft.readStates[:cap(rn.raft.readStates)] {
		if rs.RequestCtx != nil {
			t.Fatalf("raft's read state array keeps the context %q in slot %d", rs.RequestCtx, i)
		}
	}
}
