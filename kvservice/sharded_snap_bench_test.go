package kvservice

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble"
	"go.uber.org/zap"
)

// BenchmarkShardSnapshot compares, on one shard of 32 MiB (32k keys of 1
// KiB): taking a snapshot inline (the shard read into memory, as every
// snapshot was before streaming, without the 8 MiB bound) against taking
// it as a descriptor; and a full stream of the shard (read from a Pebble
// snapshot into a sink, here io.Discard) against the inline encoding.
func BenchmarkShardSnapshot(b *testing.B) {
	st, err := openStateStore(b.TempDir(), true, zap.NewNop())
	if err != nil {
		b.Fatal(err)
	}
	defer st.close()
	const keys = 32 << 10
	sh := shard{st: st, group: 1}
	val := make([]byte, 1<<10)
	batch := st.db.NewBatch()
	for i := 0; i < keys; i++ {
		val[0] = byte(i)
		if err := batch.Set(sh.dataKey(fmt.Sprintf("key%08d", i)), val, nil); err != nil {
			b.Fatal(err)
		}
	}
	if err := sh.putMeta(batch, 100, keys, &shardConfig{}); err != nil {
		b.Fatal(err)
	}
	if err := batch.Commit(pebble.NoSync); err != nil {
		b.Fatal(err)
	}
	if err := st.db.Flush(); err != nil {
		b.Fatal(err)
	}
	r := &shardRep{sh: sh}
	s := &ShardedServer{store: st, cfg: Config{ID: 1}}
	b.Run("take/inline", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, err := r.encodeSnapshot(100, keys, 1<<30); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("take/descriptor", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if d, err := s.takeSnapshot(r, 100, keys); err != nil || isInline(d) {
				b.Fatal(err, "or inline")
			}
		}
	})
	b.Run("stream", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			src, err := openShardSource(sh, 100)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := src.WriteTo(io.Discard); err != nil {
				b.Fatal(err)
			}
			_ = src.Close()
		}
	})
}

// TestMeasureShardCatchUp measures (it asserts nothing on time) how long
// a member 64 MiB behind on one shard takes to catch up: from the
// leader's log (no snapshot taken) against a streamed snapshot, two runs
// of each, interleaved. Run it with RAFTKV_MEASURE=1 go test ./kvservice
// -run TestMeasureShardCatchUp -v.
func TestMeasureShardCatchUp(t *testing.T) {
	if os.Getenv("RAFTKV_MEASURE") == "" {
		t.Skip("a measurement: set RAFTKV_MEASURE=1")
	}
	for _, mode := range []string{"log", "stream", "log", "stream"} {
		t.Run(mode, func(t *testing.T) {
			c := newShardedCluster(t, 3, 1, func(cfg *Config) {
				cfg.SnapshotCount = 1 << 40
				if mode == "stream" {
					cfg.SnapshotCount = 1000
				}
			})
			c.stop(3)
			val := strings.Repeat("v", 16<<10)
			var wg sync.WaitGroup
			for w := 0; w < 32; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := w; i < 4096; i += 32 {
						k := fmt.Sprintf("key%05d", i)
						_ = retryRequest(func() error { _, err := c.srv[1].Put(context.Background(), k, val); return err })
					}
				}()
			}
			wg.Wait()
			snaps := metricOf(t, c.srv[1], "raftkv_snapshots_taken_total")
			var before, after syscall.Rusage
			_ = syscall.Getrusage(syscall.RUSAGE_SELF, &before)
			start := time.Now()
			c.start(3)
			c.waitConverged()
			took := time.Since(start)
			_ = syscall.Getrusage(syscall.RUSAGE_SELF, &after)
			cpu := time.Duration(after.Utime.Nano()+after.Stime.Nano()-before.Utime.Nano()-before.Stime.Nano()) * time.Nanosecond
			t.Logf("CATCHUP mode=%s snapshots_taken=%v installed=%v took=%v cpu=%v", mode, snaps,
				metricOf(t, c.srv[3], "raftkv_snapshots_installed_total"), took.Round(time.Millisecond), cpu.Round(time.Millisecond))
		})
	}
}
