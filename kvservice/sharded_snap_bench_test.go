package kvservice

import (
	"fmt"
	"io"
	"testing"

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
