package transport

import (
	"testing"
	"time"

	"github.com/raftkit/raft/raftpb"
)

// Messages sent one Send at a time, some small enough for a direct write and
// some too large (they go through the writer), arrive in order, and the
// small ones sent while the writer was idle skipped it.
func TestDirectWriteKeepsOrder(t *testing.T) {
	a := startMember(t, 1, nil)
	b := startMember(t, 2, nil)
	connect(t, a, b)
	const n = 600
	go func() {
		for i := range n {
			size := 16
			if i%7 == 3 {
				size = maxDirect + 1
			}
			if i%50 == 10 { // a batch of two in one Send
				a.Send([]raftpb.Message{app(1, 2, uint64(2*i), size), app(1, 2, uint64(2*i+1), 16)})
				continue
			}
			a.Send([]raftpb.Message{app(1, 2, uint64(2*i), size)})
		}
	}()
	last := -1
	for i := range n {
		m := b.recv(t)
		if int(m.Index) <= last {
			t.Fatalf("message %d: index %d after %d", i, m.Index, last)
		}
		last = int(m.Index)
	}
	st := a.Stats().Peers[2]
	if st.DirectWrites == 0 || st.DirectWrites > st.MsgsSent {
		t.Fatalf("stats %+v: want some direct writes, at most MsgsSent", st)
	}
}

// gateRaft is a Raft whose Process blocks until the test receives, so that a
// stream to it stops being read and the socket buffers fill.
type gateRaft struct{ *recorder }

func newGateRaft() gateRaft {
	r := newRecorder()
	r.msgs = make(chan raftpb.Message)
	return gateRaft{r}
}

// A peer that stops reading never blocks Send: direct writes stop at a full
// socket buffer (their rest handed to the writer, which then blocks with
// the queue filling behind it), and what was written arrives whole and in
// order once the peer reads again.
func TestDirectWriteSlowPeerDoesNotBlock(t *testing.T) {
	a := startMember(t, 1, func(c *Config) { c.QueueSize = 64; c.IOTimeout = time.Hour })
	b := startMember(t, 2, func(c *Config) { c.Raft = newGateRaft() })
	b.r = b.cfg.Raft.(gateRaft).recorder
	connect(t, a, b)
	const n = 3000 // 3000 x 32 KiB: far more than loopback socket buffers hold
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range n {
			a.Send([]raftpb.Message{app(1, 2, uint64(i), 32<<10)})
		}
	}()
	select {
	case <-done:
	case <-time.After(guard):
		t.Fatal("Send blocked on a peer that does not read")
	}
	st := a.Stats().Peers[2]
	if st.DirectWrites == 0 || st.QueueDrops == 0 {
		t.Fatalf("stats %+v: want direct writes and, the peer stalled, queue drops", st)
	}
	last := -1
	for got := uint64(0); got < st.MsgsSent; got++ {
		m := b.recv(t)
		if int(m.Index) <= last || len(m.Entries) != 1 || len(m.Entries[0].Data) != 32<<10 {
			t.Fatalf("message %d: index %d after %d, %d entries", got, m.Index, last, len(m.Entries))
		}
		last = int(m.Index)
	}
	if bs := b.Stats(); bs.StreamErrors != 0 {
		t.Fatalf("receiver stats %+v: stream errors", bs)
	}
}
