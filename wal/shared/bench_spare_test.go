package shared

import (
	"fmt"
	"os"
	"testing"
	"time"

	pb "github.com/raftkit/raft/raftpb"
)

// BenchmarkSyncedAppend measures the write path in its steady state, where
// the fsync is the cost: one group, one synced batch of one entry per op,
// on the disk, after a warm-up of 2 MiB and a pause (which lets a WAL that
// prepares segments ahead have one ready and rotate into it). It uses only
// the exported API, so that the same file runs against an older build for
// an A/B comparison.
//
//	go test -run XXX -bench SyncedAppend -benchtime 3s ./wal/shared
func BenchmarkSyncedAppend(b *testing.B) {
	for _, size := range []int{128, 4096} {
		b.Run(fmt.Sprintf("size=%d", size), func(b *testing.B) {
			dir := b.TempDir()
			w, err := Open(dir, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer w.Close()
			if err := w.CreateGroups(1); err != nil {
				b.Fatal(err)
			}
			data, big := make([]byte, size), make([]byte, 64<<10)
			i := uint64(0)
			save := func(data []byte) {
				i++
				ups := []GroupUpdate{{GroupID: 1, HardState: pb.HardState{Term: 1, Commit: i - 1},
					Entries: []pb.Entry{{Index: i, Term: 1, Data: data}}}}
				if err := w.SaveBatch(ups); err != nil {
					b.Fatal(err)
				}
			}
			for n := 0; n < 32; n++ {
				save(big)
			}
			time.Sleep(time.Second)
			save(data)
			before := w.Stats().Fsyncs
			b.ResetTimer()
			start, cpu0 := time.Now(), cpuTime()
			for k := 0; k < b.N; k++ {
				save(data)
			}
			b.StopTimer()
			report(b, 1, start, cpu0, w.Stats().Fsyncs-before)
			os.RemoveAll(dir)
		})
	}
}
