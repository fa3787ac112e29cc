package transport

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/raftkit/raft"
	"github.com/raftkit/raft/raftpb"
)

// waitWriterIdle waits until p's writer goroutine holds nothing and nothing
// is queued, so that the next Send may write directly.
func waitWriterIdle(t *testing.T, p *peer) {
	t.Helper()
	deadline := time.Now().Add(guard)
	for time.Now().Before(deadline) {
		if p.direct.mu.TryLock() {
			idle := p.direct.raw != nil && p.queue.empty() && len(p.direct.carry) == 0
			p.direct.mu.Unlock()
			if idle {
				return
			}
		}
		runtime.Gosched()
	}
	t.Fatalf("peer %d: writer not idle within %s", p.id, guard)
}

func peerOf(m *member, id uint64) *peer {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.peers[id]
}

// On an idle stream Send writes the message itself: it is on the stream
// (counted as sent) when Send returns, with no hand-over to the writer
// goroutine, whose wake-up would otherwise add to every hop of a commit.
func TestSendWritesIdleStreamDirectly(t *testing.T) {
	a, b := startMember(t, 1, nil), startMember(t, 2, nil)
	connect(t, a, b)
	p := peerOf(a, 2)
	a.Send([]raftpb.Message{app(1, 2, 0, 8)}) // the stream may not be attached yet
	b.recv(t)
	for seq := uint64(1); seq <= 100; seq++ {
		waitWriterIdle(t, p)
		a.Send([]raftpb.Message{app(1, 2, seq, 64)})
		if got := a.Stats().Peers[2].MsgsSent; got != seq+1 {
			t.Fatalf("after Send #%d returned, %d messages counted sent; want %d (written by Send)", seq, got, seq+1)
		}
		if got := b.recv(t); got.Index != seq {
			t.Fatalf("received index %d, want %d", got.Index, seq)
		}
	}
}

// gatedRaft holds back the first message it is handed until gate is closed,
// so that the stream to it stops being read and the sender's socket fills.
type gatedRaft struct {
	*recorder
	gate chan struct{}
}

func (g gatedRaft) Process(ctx context.Context, m raftpb.Message) error {
	select {
	case <-g.gate:
	case <-ctx.Done():
		return ctx.Err()
	}
	return g.recorder.Process(ctx, m)
}

func (g gatedRaft) ReportSnapshot(id uint64, s raft.SnapshotStatus) { g.recorder.ReportSnapshot(id, s) }

// When the socket cannot take a direct write whole, the rest is carried
// over to the writer goroutine, and messages sent meanwhile queue behind it:
// every message arrives, in the order sent.
func TestDirectWriteCarryKeepsOrder(t *testing.T) {
	const n = 6000
	gate := make(chan struct{})
	rec := newRecorder()
	b2 := startMember(t, 2, func(c *Config) { c.Raft = gatedRaft{recorder: rec, gate: gate} })
	b2.r = rec
	a := startMember(t, 1, func(c *Config) { c.QueueSize = n; c.IOTimeout = time.Hour })
	if err := a.AddPeer(2, b2.Addr().String()); err != nil {
		t.Fatal(err)
	}
	if err := b2.AddPeer(1, a.Addr().String()); err != nil {
		t.Fatal(err)
	}
	a.log.waitLog(t, "established message stream to peer", "peer-id=2")
	p := peerOf(a, 2)
	waitWriterIdle(t, p)
	for seq := uint64(1); seq <= n; seq++ {
		a.Send([]raftpb.Message{app(1, 2, seq, 4000)})
	}
	if p.direct.carried.Load() == 0 {
		t.Fatalf("no direct write was cut short; the socket never filled")
	}
	close(gate)
	for seq := uint64(1); seq <= n; seq++ {
		if got := b2.recv(t); got.Index != seq {
			t.Fatalf("received index %d, want %d", got.Index, seq)
		}
	}
	if st := a.Stats().Peers[2]; st.MsgsDropped != 0 || st.MsgsSent != n {
		t.Fatalf("stats %+v; want %d sent, none dropped", st, n)
	}
}
