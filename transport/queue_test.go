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
		ok := q.push(raftpb.Message{Index: i})
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
	if !q.push(raftpb.Message{Index: 5}) {
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
