package shared

import (
	"fmt"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	pb "github.com/raftkit/raft/raftpb"
	"github.com/raftkit/raft/wal"
)

// The benchmarks compare one shared WAL with K separate wal.Storage
// instances, for a round of K groups each appending one 128-byte entry
// with its commit index:
//
//   - Shared: one SaveBatch of K updates (one write, one fsync);
//   - Separate: K goroutines, each saving its group's entry to its own
//     wal.Storage (K writes, K fsyncs, overlapping).
//
// Every group compacts its log every 100 rounds. Each runs on the disk (fsync on: fsyncs/write is the point) and on tmpfs
// (/dev/shm, where an fsync costs next to nothing, so the numbers are the
// CPU cost: cpu-us/write counts user and system time of the process).
//
//	go test -run XXX -bench 'Batch' -benchtime 2s ./wal/shared

var benchKs = []int{1, 16, 128}

const benchSegmentSize = 4 << 20

// benchCompactEvery is how often (in rounds) each group compacts its log,
// as a host does after applying; a log that is never compacted would have
// the shared WAL rewrite it forward (see "Reclaiming space").
const benchCompactEvery = 100

type benchPlace struct{ name, dir string }

func benchPlaces(b *testing.B) []benchPlace {
	places := []benchPlace{{"disk", b.TempDir()}}
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		places = append(places, benchPlace{"tmpfs", "/dev/shm"})
	}
	return places
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// report adds the per-write metrics.
func report(b *testing.B, k int, start time.Time, cpu0 time.Duration, fsyncs uint64) {
	writes := float64(b.N * k)
	b.ReportMetric(writes/time.Since(start).Seconds(), "writes/s")
	b.ReportMetric(float64(fsyncs)/writes, "fsyncs/write")
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/writes, "cpu-us/write")
}

func BenchmarkBatchShared(b *testing.B) {
	for _, place := range benchPlaces(b) {
		for _, k := range benchKs {
			b.Run(fmt.Sprintf("%s/K=%d", place.name, k), func(b *testing.B) {
				dir, err := os.MkdirTemp(place.dir, "swal-bench")
				if err != nil {
					b.Fatal(err)
				}
				defer os.RemoveAll(dir)
				w, err := Open(dir, &Options{SegmentSize: benchSegmentSize})
				if err != nil {
					b.Fatal(err)
				}
				defer w.Close()
				ids := make([]uint64, k)
				for j := range ids {
					ids[j] = uint64(j + 1)
				}
				if err := w.CreateGroups(ids...); err != nil {
					b.Fatal(err)
				}
				data := make([]byte, 128)
				ups := make([]GroupUpdate, k)
				before := w.Stats().Fsyncs
				b.ReportAllocs()
				b.ResetTimer()
				start, cpu0 := time.Now(), cpuTime()
				for i := 1; i <= b.N; i++ {
					for j := range ups {
						ups[j] = GroupUpdate{GroupID: ids[j], HardState: pb.HardState{Term: 1, Commit: uint64(i - 1)},
							Entries: []pb.Entry{{Index: uint64(i), Term: 1, Data: data}}}
					}
					if err := w.SaveBatch(ups); err != nil {
						b.Fatal(err)
					}
					if i%benchCompactEvery == 0 {
						for _, id := range ids {
							g, _ := w.Group(id)
							if err := g.Compact(uint64(i - 10)); err != nil {
								b.Fatal(err)
							}
						}
					}
				}
				report(b, k, start, cpu0, w.Stats().Fsyncs-before)
			})
		}
	}
}

func BenchmarkBatchSeparate(b *testing.B) {
	for _, place := range benchPlaces(b) {
		for _, k := range benchKs {
			b.Run(fmt.Sprintf("%s/K=%d", place.name, k), func(b *testing.B) {
				stores := make([]*wal.Storage, k)
				for j := range stores {
					dir, err := os.MkdirTemp(place.dir, "wal-bench")
					if err != nil {
						b.Fatal(err)
					}
					defer os.RemoveAll(dir)
					s, err := wal.Open(dir, &wal.Options{SegmentSize: benchSegmentSize})
					if err != nil {
						b.Fatal(err)
					}
					defer s.Close()
					stores[j] = s
				}
				fsyncs := func() (n uint64) {
					for _, s := range stores {
						n += s.Stats().Fsyncs
					}
					return n
				}
				data := make([]byte, 128)
				before := fsyncs()
				b.ReportAllocs()
				b.ResetTimer()
				start, cpu0 := time.Now(), cpuTime()
				var wg sync.WaitGroup
				for _, s := range stores {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for i := 1; i <= b.N; i++ {
							e := []pb.Entry{{Index: uint64(i), Term: 1, Data: data}}
							if err := s.Save(pb.HardState{Term: 1, Commit: uint64(i - 1)}, e, pb.Snapshot{}); err != nil {
								b.Error(err)
								return
							}
							if i%benchCompactEvery == 0 {
								if err := s.Compact(uint64(i - 10)); err != nil {
									b.Error(err)
									return
								}
							}
						}
					}()
				}
				wg.Wait()
				report(b, k, start, cpu0, fsyncs()-before)
			})
		}
	}
}

// BenchmarkBatchSharedWorkers: 4 workers each saving batches of 32 groups
// of their own to one WAL concurrently, as a host's worker pool does; the
// batches that meet during an fsync share the next one (fsyncs/write below
// 1/32 is the sharing).
func BenchmarkBatchSharedWorkers(b *testing.B) {
	const workers, k = 4, 32
	for _, place := range benchPlaces(b) {
		b.Run(place.name, func(b *testing.B) {
			dir, err := os.MkdirTemp(place.dir, "swal-bench")
			if err != nil {
				b.Fatal(err)
			}
			defer os.RemoveAll(dir)
			w, err := Open(dir, &Options{SegmentSize: benchSegmentSize})
			if err != nil {
				b.Fatal(err)
			}
			defer w.Close()
			ids := make([]uint64, workers*k)
			for j := range ids {
				ids[j] = uint64(j + 1)
			}
			if err := w.CreateGroups(ids...); err != nil {
				b.Fatal(err)
			}
			data := make([]byte, 128)
			before := w.Stats().Fsyncs
			b.ReportAllocs()
			b.ResetTimer()
			start, cpu0 := time.Now(), cpuTime()
			var wg sync.WaitGroup
			for wk := 0; wk < workers; wk++ {
				mine := ids[wk*k : (wk+1)*k]
				wg.Add(1)
				go func() {
					defer wg.Done()
					ups := make([]GroupUpdate, k)
					for i := 1; i <= b.N; i++ {
						for j := range ups {
							ups[j] = GroupUpdate{GroupID: mine[j], HardState: pb.HardState{Term: 1, Commit: uint64(i - 1)},
								Entries: []pb.Entry{{Index: uint64(i), Term: 1, Data: data}}}
						}
						if err := w.SaveBatch(ups); err != nil {
							b.Error(err)
							return
						}
						if i%benchCompactEvery == 0 {
							for _, id := range mine {
								g, _ := w.Group(id)
								if err := g.Compact(uint64(i - 10)); err != nil {
									b.Error(err)
									return
								}
							}
						}
					}
				}()
			}
			wg.Wait()
			report(b, workers*k, start, cpu0, w.Stats().Fsyncs-before)
		})
	}
}

// BenchmarkRecover: Open of a WAL holding 10,000 groups of 20 entries each
// (half compacted), written in batches across all groups with one segment
// rotation in between; reports the time per recovery and per group.
func BenchmarkRecover(b *testing.B) {
	const groups = 10000
	dir := b.TempDir()
	opts := &Options{SegmentSize: 2 << 20, NoSync: true}
	w, err := Open(dir, opts)
	if err != nil {
		b.Fatal(err)
	}
	ids := make([]uint64, groups)
	for k := range ids {
		ids[k] = uint64(k + 1)
	}
	if err := w.CreateGroups(ids...); err != nil {
		b.Fatal(err)
	}
	data := make([]byte, 64)
	ups := make([]GroupUpdate, groups)
	for i := uint64(1); i <= 20; i++ {
		for k, id := range ids {
			ups[k] = GroupUpdate{GroupID: id, HardState: pb.HardState{Term: 1, Commit: i - 1}, Entries: []pb.Entry{{Index: i, Term: 1, Data: data}}}
		}
		if err := w.SaveBatch(ups); err != nil {
			b.Fatal(err)
		}
	}
	for _, id := range ids[:groups/2] {
		g, _ := w.Group(id)
		if err := g.Compact(10); err != nil {
			b.Fatal(err)
		}
	}
	segs := len(w.SegmentPaths())
	w.Close()
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	for i := 0; i < b.N; i++ {
		w, err := Open(dir, opts)
		if err != nil {
			b.Fatal(err)
		}
		w.Close()
	}
	b.ReportMetric(float64((cpuTime()-cpu0).Milliseconds())/float64(b.N), "cpu-ms/open")
	b.ReportMetric(float64(segs), "segments")
}
