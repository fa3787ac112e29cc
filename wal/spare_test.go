package wal

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	pb "github.com/raftkit/raft/raftpb"
	"github.com/stretchr/testify/require"
)

// appendN appends n entries of size bytes from index next, one per Save.
func appendN(t testing.TB, s *Storage, next uint64, n, size int) uint64 {
	data := make([]byte, size)
	for k := 0; k < n; k++ {
		require.NoError(t, s.Save(pb.HardState{Term: 1, Commit: next}, []pb.Entry{{Index: next, Term: 1, Data: data}}, pb.Snapshot{}))
		next++
	}
	return next
}

func spareUsed(s *Storage) uint64 {
	s.spare.mu.Lock()
	defer s.spare.mu.Unlock()
	return s.spare.used
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// TestSpareSegment: once the active segment is half full the next
// segment's file is prepared (preallocated, under its own name) off
// the write path, and the rotation installs it instead of creating one; the
// log reads back whole across the rotation and a reopen. Close deletes a
// spare not used yet.
func TestSpareSegment(t *testing.T) {
	dir := t.TempDir()
	const segSize = 64 << 10
	s, err := Open(dir, &Options{SegmentSize: segSize})
	require.NoError(t, err)
	next := appendN(t, s, 1, 70, 512) // past half of segment 1
	spare := filepath.Join(dir, segmentName(2))
	waitUntil(t, "the spare of segment 2", func() bool { return spareReady(s) })
	st, err := os.Stat(spare)
	require.NoError(t, err)
	require.Equal(t, int64(segSize), st.Size(), "the spare is preallocated")

	for s.Stats().Segments == 1 { // into segment 2
		next = appendN(t, s, next, 1, 512)
	}
	require.Equal(t, uint64(1), spareUsed(s), "rotation did not use the spare")
	require.True(t, exists(spare))
	require.False(t, exists(filepath.Join(dir, segmentTmpName(2))))

	for activeSize(s) < segSize/2+4096 { // segment 2 past half: spare 3
		next = appendN(t, s, next, 1, 512)
	}
	require.Equal(t, 2, s.Stats().Segments)
	waitUntil(t, "the spare of segment 3", func() bool { return spareReady(s) })
	require.True(t, exists(filepath.Join(dir, segmentName(3))))
	require.NoError(t, s.Close())
	require.False(t, exists(filepath.Join(dir, segmentName(3))), "Close left the spare")

	s, err = Open(dir, &Options{SegmentSize: segSize})
	require.NoError(t, err)
	defer s.Close()
	last, err := s.LastIndex()
	require.NoError(t, err)
	require.Equal(t, next-1, last)
	es, err := s.Entries(1, next, 1<<30)
	require.NoError(t, err)
	require.Len(t, es, int(next-1))
}

// TestSpareLeftByCrash: a spare left in the directory by a process that
// died is deleted by recovery and never mistaken for a segment.
func TestSpareLeftByCrash(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, &Options{SegmentSize: 64 << 10})
	require.NoError(t, err)
	next := appendN(t, s, 1, 10, 128)
	require.NoError(t, s.Close())
	// What a crash during or after preparation leaves behind.
	f, err := openSegmentFile(filepath.Join(dir, segmentName(2)), 64<<10, true, true)
	require.NoError(t, err)
	require.NoError(t, f.Close())

	s, err = Open(dir, &Options{SegmentSize: 64 << 10})
	require.NoError(t, err)
	defer s.Close()
	require.False(t, exists(filepath.Join(dir, segmentName(2))))
	require.Equal(t, 1, s.Stats().Segments)
	last, _ := s.LastIndex()
	require.Equal(t, next-1, last)
	next = appendN(t, s, next, 200, 512) // rotates past segment 2
	last, _ = s.LastIndex()
	require.Equal(t, next-1, last)
}

// BenchmarkRotate times one segment rotation (64 MiB segments, preallocated)
// under the write lock, with the next segment created there (the old way)
// and from a spare prepared beforehand, which the timer does not count:
// what the append thread and the Ready loop wait out per rotation.
func BenchmarkRotate(b *testing.B) {
	for _, mode := range []string{"create", "spare"} {
		b.Run(mode, func(b *testing.B) {
			s := openTest(b, b.TempDir(), nil)
			s.noSpare = mode == "create"
			appendN(b, s, 1, 1, 128)
			var total time.Duration
			for i := 0; i < b.N; i++ {
				if mode == "spare" {
					s.spare.asked = false
					s.askSpare(&segment{size: s.opts.SegmentSize})
					for !spareReady(s) {
						time.Sleep(time.Millisecond)
					}
				}
				s.wmu.Lock()
				start := time.Now()
				err := s.rotate()
				total += time.Since(start)
				s.wmu.Unlock()
				if err != nil {
					b.Fatal(err)
				}
				// Keep the disk from filling: drop all but the active segment.
				s.mu.Lock()
				old := s.segs[:len(s.segs)-1]
				s.segs = s.segs[len(s.segs)-1:]
				s.mu.Unlock()
				for _, sg := range old {
					sg.f.Close()
					os.Remove(sg.path)
				}
				// ... and commit the removal now, not in the next timed fsync.
				if err := syncDir(s.dir); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(total.Microseconds())/float64(b.N), "us/rotate")
		})
	}
}

func activeSize(s *Storage) int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.active().size
}

func spareReady(s *Storage) bool {
	s.spare.mu.Lock()
	defer s.spare.mu.Unlock()
	return s.spare.f != nil
}
