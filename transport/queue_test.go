package transport

import (
	"runtime"
	"testing"

	"github.com/raftkit/raft/raftpb"
)

// A peer's send queue costs memory only for what is pending: adding a peer
// with the default QueueSize of 4096 must not allocate 4096 message slots
// up front (about 0.7 MiB per peer, 4.4 MiB for a 3-voter process).
func TestPeerQueueIsNotPreallocated(t *testing.T) {
	m := startMember(t, 1, nil)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	p := newPeer(m.Transport, 2, "127.0.0.1:1")
	runtime.ReadMemStats(&after)
	p.cancel()
	if got := after.TotalAlloc - before.TotalAlloc; got > 64<<10 {
		t.Fatalf("newPeer allocated %d bytes with QueueSize %d; want under 64 KiB", got, m.cfg.QueueSize)
	}
}

// The queue keeps order across takes, refuses pushes beyond its limit,
// and signals the writer once per empty-to-non-empty transition.
func TestMsgQueueOrderLimitAndSignal(t *testing.T) {
	q := newMsgQueue(3)
	for i := uint64(1); i <= 4; i++ {
		ok := q.push(raftpb.Message{Index: i}) == pushed
		if want := i <= 3; ok != want {
			t.Fatalf("push %d = %v; want %v", i, ok, want)
		}
	}
	select {
	case <-q.ready:
	default:
		t.Fatal("no ready token after the first push")
	}
	got := q.take(nil)
	if len(got) != 3 || got[0].Index != 1 || got[2].Index != 3 {
		t.Fatalf("take = %v; want indexes 1, 2, 3", got)
	}
	if q.push(raftpb.Message{Index: 5}) != pushed {
		t.Fatal("push after take refused")
	}
	select {
	case <-q.ready:
	default:
		t.Fatal("no ready token after the queue became non-empty again")
	}
	got = q.take(recycle(got))
	if len(got) != 1 || got[0].Index != 5 {
		t.Fatalf("second take = %v; want index 5", got)
	}
	if n := q.discard(); n != 0 {
		t.Fatalf("discard on an empty queue = %d", n)
	}
	q.push(raftpb.Message{Index: 6})
	q.push(raftpb.Message{Index: 7})
	if n := q.discard(); n != 2 {
		t.Fatalf("discard = %d; want 2", n)
	}
	if got := q.take(nil); len(got) != 0 {
		t.Fatalf("take after discard = %v", got)
	}
}

// A drained batch is cleared before reuse, so that the queue's spare
// buffer does not keep the payloads of sent messages alive, and a batch
// grown past shrinkAbove is let go.
func TestRecycleClearsAndShrinks(t *testing.T) {
	b := []raftpb.Message{{Entries: []raftpb.Entry{{Data: []byte("x")}}}}
	r := recycle(b)
	if len(r) != 0 || b[0].Entries != nil {
		t.Fatalf("recycle kept the entries: %v", b[0])
	}
	if r := recycle(make([]raftpb.Message, 1, shrinkAbove+1)); r != nil {
		t.Fatalf("recycle kept a buffer of capacity %d", cap(r))
	}
}

// An append without entries still queued when the next append to the peer
// arrives at the same log position is replaced by it (the peer would act on
// both alike); anything else keeps its place, and replacing never reorders:
// only the last pending message is replaced. A full queue still takes a
// message that replaces one.
func TestMsgQueueSupersedesQueuedCommitUpdate(t *testing.T) {
	commit := func(c uint64) raftpb.Message {
		return raftpb.Message{Type: raftpb.MsgApp, From: 1, To: 2, Term: 3, LogTerm: 3, Index: 10, Commit: c}
	}
	next := commit(10)
	next.Entries = []raftpb.Entry{{Term: 3, Index: 11, Data: []byte("x")}}

	q := newMsgQueue(1)
	if r := q.push(commit(10)); r != pushed {
		t.Fatalf("first push = %v; want pushed", r)
	}
	if r := q.push(next); r != superseded {
		t.Fatalf("push of the next append = %v; want superseded (queue full, but replacing)", r)
	}
	got := q.take(nil)
	if len(got) != 1 || len(got[0].Entries) != 1 || got[0].Commit != 10 {
		t.Fatalf("take = %+v; want only the append with the entry", got)
	}

	keeps := map[string]func(prev, next *raftpb.Message){
		"prev has entries":   func(prev, _ *raftpb.Message) { prev.Entries = next.Entries },
		"lower commit":       func(_, n *raftpb.Message) { n.Commit = 9 },
		"other position":     func(_, n *raftpb.Message) { n.Index = 11 },
		"other log term":     func(_, n *raftpb.Message) { n.LogTerm = 2 },
		"other term":         func(_, n *raftpb.Message) { n.Term = 4 },
		"other sender":       func(_, n *raftpb.Message) { n.From = 3 },
		"next not an append": func(_, n *raftpb.Message) { n.Type = raftpb.MsgHeartbeat },
		"prev not an append": func(prev, _ *raftpb.Message) { prev.Type = raftpb.MsgHeartbeat },
	}
	for name, change := range keeps {
		prev, n := commit(10), next
		n.Entries = append([]raftpb.Entry(nil), next.Entries...)
		change(&prev, &n)
		q := newMsgQueue(8)
		q.push(prev)
		if r := q.push(n); r != pushed {
			t.Errorf("%s: second push = %v; want pushed", name, r)
		}
		if got := q.take(nil); len(got) != 2 {
			t.Errorf("%s: take returned %d messages; want both", name, len(got))
		}
	}

	// Only the last pending message is replaced: a commit update behind
	// another message stays, so the order of what is written is kept.
	q = newMsgQueue(8)
	q.push(commit(10))
	q.push(raftpb.Message{Type: raftpb.MsgHeartbeat, From: 1, To: 2, Term: 3})
	if r := q.push(next); r != pushed {
		t.Fatalf("push behind a heartbeat = %v; want pushed", r)
	}
	if got := q.take(nil); len(got) != 3 {
		t.Fatalf("take returned %d messages; want 3", len(got))
	}
}
