package transport

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"go.uber.org/zap"

	"github.com/raftkit/raft"
	"github.com/raftkit/raft/raftpb"
)

// counter is a Raft that only counts deliveries and wakes a waiter.
type counter struct {
	n     atomic.Int64
	wake  chan struct{}
	lost  atomic.Int64
	snaps chan raft.SnapshotStatus
}

func (c *counter) Process(_ context.Context, _ raftpb.Message) error {
	c.n.Add(1)
	select {
	case c.wake <- struct{}{}:
	default:
	}
	return nil
}
func (c *counter) ReportUnreachable(uint64)                       { c.lost.Add(1) }
func (c *counter) ReportSnapshot(_ uint64, s raft.SnapshotStatus) { c.snaps <- s }

// BenchmarkThroughput pushes MsgApps carrying one entry of the given size
// from one transport to another over loopback, as a Ready loop would: in
// batches, never more than a window ahead of the receiver (so nothing is
// dropped and every message is measured end to end).
func BenchmarkThroughput(b *testing.B) {
	for _, size := range []int{64, 1024, 16 << 10} {
		b.Run(fmt.Sprintf("entry=%dB", size), func(b *testing.B) {
			benchThroughput(b, size)
		})
	}
}

func benchThroughput(b *testing.B, size int) {
	const queue, batch = 4096, 64
	start := func(id uint64, r Raft) *Transport {
		tr, err := New(Config{ClusterID: 1, ID: id, ListenAddr: "127.0.0.1:0", Raft: r,
			QueueSize: queue, Logger: zap.NewNop(), Backoff: Backoff{Initial: 1e6, Max: 1e7, Multiplier: 2}})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = tr.Close() })
		return tr
	}
	sink := &counter{wake: make(chan struct{}, 1)}
	src := &counter{wake: make(chan struct{}, 1)}
	a, z := start(1, src), start(2, sink)
	// The receiver learns of the sender first, so that the sender's first
	// dial is accepted.
	if err := z.AddPeer(1, a.Addr().String()); err != nil {
		b.Fatal(err)
	}
	if err := a.AddPeer(2, z.Addr().String()); err != nil {
		b.Fatal(err)
	}
	msgs := make([]raftpb.Message, batch)
	for i := range msgs {
		msgs[i] = app(1, 2, uint64(i), size)
	}
	// Warm up: the stream is up once one message got through.
	a.Send(msgs[:1])
	<-sink.wake
	base := sink.n.Load()
	b.SetBytes(int64(msgs[0].Size()))
	b.ReportAllocs()
	b.ResetTimer()
	sent := 0
	for sent < b.N {
		for int64(sent)-(sink.n.Load()-base) > queue/2 {
			<-sink.wake
		}
		n := min(batch, b.N-sent)
		a.Send(msgs[:n])
		sent += n
	}
	for sink.n.Load()-base < int64(b.N) {
		<-sink.wake
	}
	b.StopTimer()
	if lost := src.lost.Load(); lost != 0 {
		b.Fatalf("%d unreachable reports during the run", lost)
	}
}

// BenchmarkSnapshot streams a snapshot of 8 MiB to a peer and waits for
// the acknowledgement.
func BenchmarkSnapshot(b *testing.B) {
	sink := &counter{wake: make(chan struct{}, 1)}
	src := &counter{wake: make(chan struct{}, 1), snaps: make(chan raft.SnapshotStatus, 1)}
	a, err := New(Config{ClusterID: 1, ID: 1, ListenAddr: "127.0.0.1:0", Raft: src})
	if err != nil {
		b.Fatal(err)
	}
	defer a.Close()
	z, err := New(Config{ClusterID: 1, ID: 2, ListenAddr: "127.0.0.1:0", Raft: sink})
	if err != nil {
		b.Fatal(err)
	}
	defer z.Close()
	// The receiver learns of the sender first, so that the sender's first
	// dial is accepted.
	if err := z.AddPeer(1, a.Addr().String()); err != nil {
		b.Fatal(err)
	}
	if err := a.AddPeer(2, z.Addr().String()); err != nil {
		b.Fatal(err)
	}
	m := snapMsg(1, 2, 8<<20)
	b.SetBytes(int64(len(m.Snapshot.Data)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		a.Send([]raftpb.Message{m})
		if s := <-src.snaps; s != raft.SnapshotFinish {
			b.Fatalf("snapshot %d: %v", i, s)
		}
	}
}
