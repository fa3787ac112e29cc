package bench

import (
	"context"
	"fmt"
	"runtime"
	"testing"
)

// countMallocs starts counting heap allocations; the returned func reports
// them per operation as mallocs/op. Unlike allocs/op, which go test rounds
// down to an integer, it keeps the fraction, which matters once batching
// amortizes allocations below one per proposal.
func countMallocs(b *testing.B) func() {
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	return func() {
		b.StopTimer()
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.Mallocs-before.Mallocs)/float64(b.N), "mallocs/op")
	}
}

// The comparison set, run by scripts/bench-compare.sh for both sides. Times
// are per proposal (Propose, Cluster, Node), per entry (FollowerMsgApp), per
// read (ReadIndex) or per call (Status).

// BenchmarkPropose: one voter, k proposals per Ready cycle
// (propose→Ready→persist→Advance until applied).
func BenchmarkPropose(b *testing.B) {
	for _, k := range []int{1, 64} {
		b.Run(fmt.Sprintf("voters=1/batch=%d", k), func(b *testing.B) { benchCluster(b, 1, k, 128) })
	}
}

// BenchmarkCluster: three voters in one goroutine, messages delivered
// synchronously until every node applied the round's k proposals.
func BenchmarkCluster(b *testing.B) {
	for _, k := range []int{1, 64} {
		b.Run(fmt.Sprintf("voters=3/batch=%d", k), func(b *testing.B) { benchCluster(b, 3, k, 128) })
	}
}

// BenchmarkNodePropose: a one-voter Node; this goroutine proposes while
// another runs the Ready loop.
func BenchmarkNodePropose(b *testing.B) {
	r := newNodeRig()
	defer r.stop()
	data := make([]byte, 128)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	defer countMallocs(b)()
	for i := 0; i < b.N; i++ {
		if err := r.n.Propose(ctx, data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFollowerMsgApp: a follower stepping MsgApps of k entries, each
// persisted, acknowledged and (one message later) applied.
func BenchmarkFollowerMsgApp(b *testing.B) {
	for _, k := range []int{1, 64} {
		b.Run(fmt.Sprintf("batch=%d", k), func(b *testing.B) {
			f := newFollower(128)
			f.step(k)
			b.ReportAllocs()
			b.ResetTimer()
			defer countMallocs(b)()
			for i := 0; i < b.N; i += k {
				f.step(k)
			}
		})
	}
}

// BenchmarkReadIndex: ReadIndex round trips on the leader, until the read
// state is handed out (on three voters, a heartbeat round).
func BenchmarkReadIndex(b *testing.B) {
	for _, n := range []int{1, 3} {
		b.Run(fmt.Sprintf("voters=%d", n), func(b *testing.B) {
			c := newCluster(n)
			rctx := []byte("read-ctx")
			b.ReportAllocs()
			b.ResetTimer()
			defer countMallocs(b)()
			for i := 0; i < b.N; i++ {
				c.nodes[0].ReadIndex(rctx)
				c.settle()
			}
			if c.reads != b.N {
				b.Fatalf("%d read states for %d reads", c.reads, b.N)
			}
		})
	}
}

// BenchmarkStatus: Status and BasicStatus of a three-voter leader.
func BenchmarkStatus(b *testing.B) {
	c := newCluster(3)
	c.proposeAndCommit(1, []byte("x"))
	b.Run("full", func(b *testing.B) {
		b.ReportAllocs()
		defer countMallocs(b)()
		for i := 0; i < b.N; i++ {
			_ = c.nodes[0].Status()
		}
	})
	b.Run("basic", func(b *testing.B) {
		b.ReportAllocs()
		defer countMallocs(b)()
		for i := 0; i < b.N; i++ {
			_ = c.nodes[0].BasicStatus()
		}
	})
}

// The scale set (Scale prefix, not part of the ratio): how the cost per
// proposal grows with payload size, voters and proposals in flight.
func BenchmarkScale(b *testing.B) {
	for _, size := range []int{128, 4 << 10, 64 << 10} {
		b.Run(fmt.Sprintf("payload/voters=3/bytes=%d", size), func(b *testing.B) { benchCluster(b, 3, 1, size) })
	}
	for _, n := range []int{1, 3, 5, 7} {
		b.Run(fmt.Sprintf("voters/n=%d", n), func(b *testing.B) { benchCluster(b, n, 1, 128) })
	}
	for _, k := range []int{1, 8, 64, 256} {
		b.Run(fmt.Sprintf("inflight/voters=3/k=%d", k), func(b *testing.B) { benchCluster(b, 3, k, 128) })
	}
}

// benchCluster measures proposals of size bytes in rounds of k on n voters;
// b.N counts proposals.
func benchCluster(b *testing.B, n, k, size int) {
	c := newCluster(n)
	data := make([]byte, size)
	c.proposeAndCommit(k, data)
	b.ReportAllocs()
	b.ResetTimer()
	defer countMallocs(b)()
	for i := 0; i < b.N; i += k {
		c.proposeAndCommit(k, data)
	}
}

// TestRigs runs every rig briefly, so that `go test ./...` checks that they
// work (on whichever side the package is built for) without benchmarking.
func TestRigs(t *testing.T) {
	t.Logf("side: %s", Side)
	for _, n := range []int{1, 3, 5} {
		c := newCluster(n)
		c.proposeAndCommit(1, []byte("a"))
		c.proposeAndCommit(64, []byte("b"))
		c.nodes[0].ReadIndex([]byte("r"))
		c.settle()
		if c.reads != 1 {
			t.Fatalf("voters=%d: %d read states, want 1", n, c.reads)
		}
		if st := c.nodes[0].Status(); len(st.Progress) != n {
			t.Fatalf("voters=%d: Status has %d progresses", n, len(st.Progress))
		}
	}
	f := newFollower(8)
	for i := 0; i < 3; i++ {
		f.step(4)
	}
	if f.last != 13 || f.applied != 9 || f.acks != 3 {
		t.Fatalf("follower: last %d applied %d acks %d", f.last, f.applied, f.acks)
	}
	d := newDurableCluster(3, openDurable(t.TempDir()))
	d.proposeAndCommit(1, []byte("d"))
	d.proposeAndCommit(64, []byte("e"))
	d.close()
	r := newNodeRig()
	for i := 0; i < 10; i++ {
		if err := r.n.Propose(context.Background(), []byte("n")); err != nil {
			t.Fatal(err)
		}
	}
	r.stop()
}

// BenchmarkDurable: three voters on durable storage (raftkit: wal.Storage
// with fsync off; etcd: MemoryStorage, see DurableStorageKind), k proposals
// per round as in Cluster. Besides time it reports entries-calls/commit:
// Storage.Entries calls by all three nodes per committed entry. Not part of
// bench-compare.sh's default set: run it with '^BenchmarkDurable$'.
func BenchmarkDurable(b *testing.B) {
	for _, k := range []int{1, 64} {
		b.Run(fmt.Sprintf("voters=3/batch=%d", k), func(b *testing.B) {
			c := newDurableCluster(3, openDurable(b.TempDir()))
			defer c.close()
			data := make([]byte, 128)
			c.proposeAndCommit(k, data)
			calls := c.entriesCalls()
			b.ReportAllocs()
			b.ResetTimer()
			defer countMallocs(b)()
			n := 0
			for ; n < b.N; n += k {
				c.proposeAndCommit(k, data)
			}
			b.ReportMetric(float64(c.entriesCalls()-calls)/float64(n), "entries-calls/commit")
		})
	}
}
