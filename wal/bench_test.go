package wal

import (
	"fmt"
	"os"
	"sort"
	"sync"
	"testing"
	"time"

	pb "github.com/raftkit/raft/raftpb"
	"github.com/stretchr/testify/require"
)

// BenchmarkSave: one writer appending through Save with an fsync per call
// (entries always need one), batch entries per call. ents/s is appends per
// second; fsyncs/s is syncs per second.
func BenchmarkSave(b *testing.B) {
	for _, size := range []int{128, 4096} {
		for _, batch := range []int{1, 64} {
			b.Run(fmt.Sprintf("entry=%dB/batch=%d", size, batch), func(b *testing.B) {
				s := openTest(b, b.TempDir(), nil)
				data := make([]byte, size)
				es := make([]pb.Entry, batch)
				next := uint64(1)
				b.SetBytes(int64(size * batch))
				b.ReportAllocs()
				b.ResetTimer()
				start := time.Now()
				for i := 0; i < b.N; i++ {
					for k := range es {
						es[k] = pb.Entry{Index: next, Term: 1, Data: data}
						next++
					}
					if err := s.Save(pb.HardState{Term: 1, Commit: next - 1}, es, pb.Snapshot{}); err != nil {
						b.Fatal(err)
					}
				}
				secs := time.Since(start).Seconds()
				b.ReportMetric(float64(b.N*batch)/secs, "ents/s")
				b.ReportMetric(float64(s.Stats().Fsyncs)/secs, "fsyncs/s")
			})
		}
	}
}

// BenchmarkGroupCommit: 16 concurrent writers each saving one entry-sized
// HardState change at a time; fsyncs/op below 1 is the sharing.
func BenchmarkGroupCommit(b *testing.B) {
	s := openTest(b, b.TempDir(), nil)
	const writers = 16
	var wg sync.WaitGroup
	var term uint64
	var mu sync.Mutex
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	per := b.N / writers
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < per; i++ {
				mu.Lock()
				term++
				t := term
				mu.Unlock()
				if err := s.SetHardState(pb.HardState{Term: t}); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	n := float64(per * writers)
	b.ReportMetric(n/secs, "writes/s")
	b.ReportMetric(float64(s.Stats().Fsyncs)/max(n, 1), "fsyncs/write")
}

// BenchmarkRecovery measures Open on a log of the given size of 4 KiB
// entries (page cache warm: the files were just written). The 1 GiB case
// runs only with WAL_BENCH_1GIB=1.
func BenchmarkRecovery(b *testing.B) {
	sizes := []int64{64 << 20}
	if os.Getenv("WAL_BENCH_1GIB") != "" {
		sizes = append(sizes, 1<<30)
	}
	for _, total := range sizes {
		for _, entry := range []int{128, 4096} {
			b.Run(fmt.Sprintf("log=%dMiB/entry=%dB", total>>20, entry), func(b *testing.B) {
				dir := b.TempDir()
				fillLog(b, dir, total, entry)
				b.SetBytes(total)
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					s, err := Open(dir, nil)
					if err != nil {
						b.Fatal(err)
					}
					b.StopTimer()
					st := s.Stats()
					b.ReportMetric(float64(st.IndexMarks*8)/float64(1<<20), "index-MiB")
					require.NoError(b, s.Close())
					b.StartTimer()
				}
			})
		}
	}
}

// fillLog writes about total bytes of entries of the given size.
func fillLog(b *testing.B, dir string, total int64, entry int) {
	s, err := Open(dir, nil)
	require.NoError(b, err)
	data := make([]byte, entry)
	const batch = 256
	es := make([]pb.Entry, batch)
	next := uint64(1)
	for written := int64(0); written < total; written += int64(batch * (entry + frameHeaderSize + entryHeaderSize)) {
		for k := range es {
			es[k] = pb.Entry{Index: next, Term: 1, Data: data}
			next++
		}
		// Append without waiting for each fsync: the bytes are what matter.
		if _, _, err := s.save(pb.HardState{Term: 1, Commit: next - 1}, es, pb.Snapshot{}); err != nil {
			b.Fatal(err)
		}
	}
	require.NoError(b, s.Close())
}

// BenchmarkPersistAppends: one PersistAppends call of msgs messages, each
// of ents entries, as the append thread hands over what queued up during
// an fsync. ns/op is per call; fsync on unless nosync.
func BenchmarkPersistAppends(b *testing.B) {
	for _, c := range []struct {
		size, msgs, ents int
		nosync           bool
	}{
		{128, 8, 4, false}, {4096, 8, 4, false}, {128, 8, 4, true}, {4096, 8, 4, true}, {128, 32, 1, true},
	} {
		name := fmt.Sprintf("entry=%dB/msgs=%d/ents=%d/nosync=%v", c.size, c.msgs, c.ents, c.nosync)
		b.Run(name, func(b *testing.B) {
			s := openTest(b, b.TempDir(), &Options{NoSync: c.nosync})
			data := make([]byte, c.size)
			msgs := make([]pb.Message, c.msgs)
			next := uint64(1)
			b.SetBytes(int64(c.size * c.msgs * c.ents))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				for k := range msgs {
					es := make([]pb.Entry, c.ents)
					for j := range es {
						es[j] = pb.Entry{Index: next, Term: 1, Data: data}
						next++
					}
					msgs[k] = pb.Message{Type: pb.MsgStorageAppend, Term: 1, Vote: 1, Commit: next - 1, Entries: es}
				}
				if _, err := s.PersistAppends(msgs...); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSaveFullCache: Save of 4 entries of 128 B with the entry cache
// at its limit (256 KiB), fsync off: B/op is what the cache's array costs
// per call once every Save drops entries from its front.
func BenchmarkSaveFullCache(b *testing.B) {
	s := openTest(b, b.TempDir(), &Options{NoSync: true, CacheSize: 256 << 10})
	data := make([]byte, 128)
	ents := make([]pb.Entry, 4)
	next := uint64(1)
	save := func() {
		for k := range ents {
			ents[k] = pb.Entry{Index: next, Term: 1, Data: data}
			next++
		}
		if err := s.Save(pb.HardState{Term: 1, Commit: next - 1}, ents, pb.Snapshot{}); err != nil {
			b.Fatal(err)
		}
	}
	for i := 0; i < 2000; i++ {
		save()
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		save()
	}
}

// BenchmarkCreateSnapshot: CreateSnapshot of 1 KiB of state over a log of
// entries, fsync on: what the Ready loop waits per snapshot taken.
func BenchmarkCreateSnapshot(b *testing.B) {
	s := openTest(b, b.TempDir(), nil)
	data := make([]byte, 1024)
	next := uint64(1)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		if err := s.Save(pb.HardState{Term: 1, Commit: next}, []pb.Entry{{Index: next, Term: 1, Data: data[:64]}}, pb.Snapshot{}); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if _, err := s.CreateSnapshot(next, &pb.ConfState{Voters: []uint64{1, 2, 3}}, data); err != nil {
			b.Fatal(err)
		}
		next++
	}
}

// BenchmarkSaveWithCompaction: one writer saving batches of 16 entries of
// 4 KiB with an fsync each, compacting every 10 MiB to keep the last 20 MiB,
// as a raft node's snapshot policy does, over segments of the default size:
// segments rotate and are retired (deleted or recycled) while the writes go
// on. p50-ms, p99-ms, p999-ms and max-ms are the Save latency's
// percentiles; the tail is what retiring segments costs the fsyncs running
// meanwhile. Run it with -benchtime=6000x or more so that several segments
// rotate and are retired.
func BenchmarkSaveWithCompaction(b *testing.B) {
	s := openTest(b, b.TempDir(), nil)
	const batch, size, every, keep = 16, 4096, 2560, 5120
	data := make([]byte, size)
	ents := make([]pb.Entry, batch)
	lat := make([]time.Duration, 0, b.N)
	next := uint64(1)
	b.SetBytes(batch * size)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for k := range ents {
			ents[k] = pb.Entry{Index: next + uint64(k), Term: 1, Data: data}
		}
		t0 := time.Now()
		if err := s.Save(pb.HardState{Term: 1, Commit: next}, ents, pb.Snapshot{}); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
		next += batch
		if last := next - 1; last%every == 0 && last > keep {
			if err := s.Compact(last - keep); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.StopTimer()
	sort.Slice(lat, func(x, y int) bool { return lat[x] < lat[y] })
	b.ReportMetric(float64(lat[len(lat)/2])/1e6, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100])/1e6, "p99-ms")
	b.ReportMetric(float64(lat[len(lat)*999/1000])/1e6, "p999-ms")
	b.ReportMetric(float64(lat[len(lat)-1])/1e6, "max-ms")
}
