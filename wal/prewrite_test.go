package wal

import (
	"bytes"
	"math/rand"
	"os"
	"path/filepath"
	"testing"

	pb "github.com/raftkit/raft/raftpb"
	"github.com/stretchr/testify/require"
)

// requireFIEMAP skips the test where the file system does not say which
// blocks are written (FIEMAP), or does not leave fallocated blocks
// unwritten, so that what prewriting changes cannot be seen.
func requireFIEMAP(t *testing.T, dir string) {
	t.Helper()
	f, err := os.Create(filepath.Join(dir, "fiemap-probe"))
	require.NoError(t, err)
	defer os.Remove(f.Name())
	defer f.Close()
	require.NoError(t, preallocate(f, 64<<10))
	n, err := writtenPrefix(f)
	if err != nil || n != 0 {
		t.Skipf("file system reports no unwritten extents (prefix %d, %v)", n, err)
	}
}

// TestWrittenPrefix: writtenPrefix stops at the first unwritten or
// missing block: fallocate reserves, a synced write converts.
func TestWrittenPrefix(t *testing.T) {
	dir := t.TempDir()
	requireFIEMAP(t, dir)
	f, err := os.Create(filepath.Join(dir, "f"))
	require.NoError(t, err)
	defer f.Close()
	require.NoError(t, preallocate(f, 256<<10))
	_, err = f.WriteAt(bytes.Repeat([]byte{1}, 8<<10), 0)
	require.NoError(t, err)
	require.NoError(t, f.Sync())
	n, err := writtenPrefix(f)
	require.NoError(t, err)
	require.Equal(t, int64(8<<10), n)

	_, err = f.WriteAt(make([]byte, 248<<10), 8<<10)
	require.NoError(t, err)
	require.NoError(t, f.Sync())
	n, err = writtenPrefix(f)
	require.NoError(t, err)
	require.Equal(t, int64(256<<10), n)

	// A hole (the file grown past its blocks) ends the prefix too.
	require.NoError(t, f.Truncate(512<<10))
	n, err = writtenPrefix(f)
	require.NoError(t, err)
	require.Equal(t, int64(256<<10), n)
}

// prewriteIdle says whether the prewriter has done what askPrewrite asks
// for the active segment: written blocks at least half its target ahead.
func prewriteIdle(s *Storage) bool {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.mu.RLock()
	sg := s.active()
	size := sg.size
	s.mu.RUnlock()
	s.pw.mu.Lock()
	defer s.pw.mu.Unlock()
	return s.pw.seg == sg && !s.pw.wants(sg, size, s.pw.done.Load())
}

func activeWrittenPrefix(t *testing.T, s *Storage) (prefix, size int64) {
	t.Helper()
	s.wmu.Lock()
	defer s.wmu.Unlock()
	sg := s.active()
	prefix, err := writtenPrefix(sg.f)
	require.NoError(t, err)
	return prefix, sg.size
}

// TestPrewriteKeepsTheBlocksAheadWritten: the blocks past the active
// segment's data are written (not fallocate's unwritten extents) as far
// as the log has written, so that the next appends convert nothing.
func TestPrewriteKeepsTheBlocksAheadWritten(t *testing.T) {
	dir := t.TempDir()
	requireFIEMAP(t, dir)
	s := openTest(t, dir, &Options{SegmentSize: 4 << 20})
	appendN(t, s, 1, 64, 4096)
	waitUntil(t, "the prewriter to catch up", func() bool { return prewriteIdle(s) })
	prefix, size := activeWrittenPrefix(t, s)
	require.GreaterOrEqual(t, prefix, size+(size-s.active().dataStart)/2-pageSize,
		"written blocks end at %d, data at %d", prefix, size)
	require.NoError(t, s.Close())

	// Off: the blocks past the data stay unwritten.
	dir = t.TempDir()
	s = openTest(t, dir, &Options{SegmentSize: 4 << 20, Prewrite: -1})
	appendN(t, s, 1, 64, 4096)
	prefix, size = activeWrittenPrefix(t, s)
	require.Less(t, prefix, size+pageSize)
	require.Zero(t, s.pw.zeroed.Load())
}

// TestPrewriteZeroesLittleForASmallLog: a log that wrote one small entry
// gets prewriteMinAhead of zeros, not Options.Prewrite (tests and
// applications open many small logs).
func TestPrewriteZeroesLittleForASmallLog(t *testing.T) {
	s := openTest(t, t.TempDir(), nil)
	appendN(t, s, 1, 1, 100)
	waitUntil(t, "the prewriter to catch up", func() bool { return prewriteIdle(s) })
	require.Greater(t, s.pw.zeroed.Load(), int64(0))
	require.LessOrEqual(t, s.pw.zeroed.Load(), int64(prewriteMinAhead+pageSize))
}

// TestPrewriteStartsAfterTheWritersClaim: a writer whose write reaches
// past the prewritten blocks records its end first, and the next chunk
// starts after it, so zeros never land on a batch being written.
func TestPrewriteStartsAfterTheWritersClaim(t *testing.T) {
	s := openTest(t, t.TempDir(), &Options{SegmentSize: 4 << 20})
	s.stopPrewrite() // chunks are driven by the test
	appendN(t, s, 1, 4, 4096)
	var from int64
	s.pw.onStep = func(step int, _ *segment, f, _ int64) { from = f }

	s.wmu.Lock()
	end := s.pw.done.Load() + 3*pageSize + 17
	s.claimWrite(end) // as commit does before writing up to end
	s.wmu.Unlock()
	n, err := s.prewriteChunk(make([]byte, prewriteChunk), true)
	require.NoError(t, err)
	require.Greater(t, n, int64(0))
	require.GreaterOrEqual(t, from, end)
}

// TestPrewriteRefillsInFullChunks: once the blocks ahead reach the
// target, the few KiB each append moves it by start no chunk (each costs a
// sync); a refill starts when they fall below half the target.
func TestPrewriteRefillsInFullChunks(t *testing.T) {
	s := openTest(t, t.TempDir(), &Options{SegmentSize: 4 << 20})
	s.stopPrewrite()
	next := appendN(t, s, 1, 64, 4096)
	zeros := make([]byte, 64<<10)
	for {
		n, err := s.prewriteChunk(zeros, true)
		require.NoError(t, err)
		if n == 0 {
			break
		}
	}
	next = appendN(t, s, next, 1, 4096)
	n, err := s.prewriteChunk(zeros, false)
	require.NoError(t, err)
	require.Zero(t, n, "a chunk for the few KiB the target moved")
	for !prewriteWanted(s) {
		next = appendN(t, s, next, 1, 4096)
	}
	n, err = s.prewriteChunk(zeros, false)
	require.NoError(t, err)
	require.Equal(t, int64(len(zeros)), n)
}

func prewriteWanted(s *Storage) bool {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.pw.mu.Lock()
	defer s.pw.mu.Unlock()
	return s.pw.wants(s.active(), s.active().size, s.pw.done.Load())
}

// TestRotationDetachesPrewrite: once rotation seals a segment no chunk is
// written into it (that would grow it past its last record, which
// recovery reports as damage); the new segment is prewritten instead.
func TestRotationDetachesPrewrite(t *testing.T) {
	dir := t.TempDir()
	opts := &Options{SegmentSize: 256 << 10}
	s := openTest(t, dir, opts)
	s.stopPrewrite()
	var n int64 = -1
	var sealedSize int64
	s.afterNewSegment = func() {
		sealedSize = s.active().size
		var err error
		n, err = s.prewriteChunk(make([]byte, prewriteChunk), true)
		require.NoError(t, err)
	}
	// Segment 1 is sealed well short of its preallocated size: a batch
	// that does not fit in it starts segment 2.
	next := appendN(t, s, 1, 40, 4096)
	next = appendN(t, s, next, 1, 120<<10)
	require.Equal(t, uint64(2), activeSeq(s))
	require.Less(t, sealedSize, int64(200<<10))
	require.Zero(t, n, "a chunk was written between the seal and the new segment")
	fi, err := os.Stat(filepath.Join(dir, segmentName(1)))
	require.NoError(t, err)
	require.Equal(t, sealedSize, fi.Size())
	s.afterNewSegment = nil
	require.Equal(t, s.active(), s.pw.seg)
	n, err = s.prewriteChunk(make([]byte, prewriteChunk), true)
	require.NoError(t, err)
	require.Greater(t, n, int64(0))
	require.NoError(t, s.Close())
	r := openTest(t, dir, opts)
	es, err := r.Entries(1, next, 1<<40)
	require.NoError(t, err)
	require.Len(t, es, int(next-1))
	require.Len(t, es[len(es)-1].Data, 120<<10)
}

// requireLog opens dir and checks that it holds entries first..last of
// size bytes each, as appendN wrote them, and closes it.
func requireLog(t *testing.T, dir string, opts *Options, first, last uint64, size int) {
	t.Helper()
	s, err := Open(dir, opts)
	require.NoError(t, err)
	defer s.Close()
	li, err := s.LastIndex()
	require.NoError(t, err)
	require.Equal(t, last, li)
	es, err := s.Entries(first, last+1, 1<<40)
	require.NoError(t, err)
	require.Len(t, es, int(last-first+1))
	for k, e := range es {
		require.Equal(t, first+uint64(k), e.Index)
		require.Len(t, e.Data, size)
	}
}

// copyDir copies the files of dir into a new directory, as a crash at
// this point would leave them (the page cache's view: what was written,
// synced or not; unsynced zeros lost by a crash read as zeros anyway).
func copyDir(t *testing.T, dir string) string {
	t.Helper()
	out := t.TempDir()
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range ents {
		if e.Name() == lockFileName {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(out, e.Name()), data, 0o644))
	}
	return out
}

// TestCrashAtEveryStepOfPrewrite: a crash before a chunk, after its write,
// after its sync or after done is raised leaves a log that recovers every
// acknowledged entry and takes appends after them, in a new segment and in
// a recycled one whose old bytes the chunks zero.
func TestCrashAtEveryStepOfPrewrite(t *testing.T) {
	for _, recycled := range []bool{false, true} {
		dir := t.TempDir()
		opts := &Options{SegmentSize: 256 << 10}
		s := openTest(t, dir, opts)
		s.stopPrewrite()
		next := uint64(1)
		if recycled {
			s.noSpare = true // the spare is made when the test asks
			var first2 uint64
			next, first2 = appendUntilSegment(t, s, next, 2, 4096)
			next, _ = appendUntilSegment(t, s, next, 3, 4096)
			require.NoError(t, s.Compact(first2))
			waitUntil(t, "segment 1 in the pool", func() bool { return poolLen(s) == 1 })
			s.prepareSpare()
			next, _ = appendUntilSegment(t, s, next, 4, 4096)
			require.Equal(t, uint64(1), spareReused(s))
			// Its old bytes are written blocks, which prewriting skips;
			// as if the file system could not tell (writtenPrefix), the
			// chunks then go over them.
			s.wmu.Lock()
			s.active().written = 0
			s.attachPrewrite(s.active())
			s.wmu.Unlock()
		}
		first, _ := s.FirstIndex()
		next = appendN(t, s, next, 30, 4096) // the target: 120 KiB past them
		var crashes []string
		s.pw.onStep = func(int, *segment, int64, int64) { crashes = append(crashes, copyDir(t, dir)) }
		crashes = append(crashes, copyDir(t, dir))
		for k := 0; k < 3; k++ {
			n, err := s.prewriteChunk(make([]byte, 16<<10), true)
			require.NoError(t, err)
			require.Greater(t, n, int64(0))
			crashes = append(crashes, copyDir(t, dir))
		}
		require.Len(t, crashes, 1+3*3)
		for k, c := range crashes {
			requireLog(t, c, opts, first, next-1, 4096)
			r, err := Open(c, opts)
			require.NoError(t, err, "crash %d", k)
			after := appendN(t, r, next, 40, 4096)
			require.NoError(t, r.Close())
			requireLog(t, c, opts, first, after-1, 4096)
		}
	}
}

// TestPrewriteSkipsRecycledBlocks: a recycled segment's blocks were
// written in its earlier life, so prewriting starts where that life's data
// ended, not at the header.
func TestPrewriteSkipsRecycledBlocks(t *testing.T) {
	dir := t.TempDir()
	requireFIEMAP(t, dir)
	s := openTest(t, dir, &Options{SegmentSize: 256 << 10})
	s.noSpare = true
	next, first2 := appendUntilSegment(t, s, 1, 2, 4096)
	next, _ = appendUntilSegment(t, s, next, 3, 4096)
	fi, err := os.Stat(filepath.Join(dir, segmentName(1)))
	require.NoError(t, err)
	oldSize := fi.Size()
	require.NoError(t, s.Compact(first2))
	waitUntil(t, "segment 1 in the pool", func() bool { return poolLen(s) == 1 })
	s.prepareSpare()
	appendUntilSegment(t, s, next, 4, 4096)
	require.Equal(t, uint64(1), spareReused(s))
	require.GreaterOrEqual(t, s.active().written, oldSize/pageSize*pageSize)
}

// TestPrewritePausesForLargeGroupCommits: prewriting pauses while the
// log writes more than prewriteMaxPerSync bytes per fsync, judged over
// prewriteSample fsyncs at least.
func TestPrewritePausesForLargeGroupCommits(t *testing.T) {
	s := openTest(t, t.TempDir(), &Options{NoSync: true}) // no prewriter running
	require.False(t, s.prewriteBusy())
	s.stats.fsyncs.Add(20)
	s.stats.bytes.Add(20 * 4200)
	require.False(t, s.prewriteBusy(), "4 KiB per fsync")
	s.stats.fsyncs.Add(20)
	s.stats.bytes.Add(20 * (prewriteMaxPerSync + 1))
	require.True(t, s.prewriteBusy(), "large group commits")
	s.stats.fsyncs.Add(3)
	s.stats.bytes.Add(3 * 4200)
	require.True(t, s.prewriteBusy(), "too few fsyncs to change the verdict")
	s.stats.fsyncs.Add(20)
	s.stats.bytes.Add(20 * 4200)
	require.False(t, s.prewriteBusy(), "small commits again")
	s.stats.bytes.Add(1 << 20)
	require.True(t, s.prewriteBusy(), "a large write before its fsync")
}

// TestPrewriteAlongsideTheWriter: appends of random sizes, small segments
// (frequent rotations, recycling) and the prewriter at work at once; every
// entry reads back after a reopen. Run with -race.
func TestPrewriteAlongsideTheWriter(t *testing.T) {
	dir := t.TempDir()
	opts := &Options{SegmentSize: 128 << 10, Prewrite: 32 << 10}
	s := openTest(t, dir, opts)
	rng := rand.New(rand.NewSource(7))
	sizes := make([]int, 600)
	for k := range sizes {
		sizes[k] = 1 + rng.Intn(9000)
	}
	for i := uint64(1); i <= uint64(len(sizes)); i++ {
		data := bytes.Repeat([]byte{byte(i)}, sizes[i-1])
		require.NoError(t, s.Save(pb.HardState{Term: 1, Commit: i}, []pb.Entry{{Index: i, Term: 1, Data: data}}, pb.Snapshot{}))
		if i%150 == 0 {
			require.NoError(t, s.Compact(i-100))
		}
	}
	require.Greater(t, s.pw.zeroed.Load(), int64(0))
	require.Greater(t, spareReused(s), uint64(0))
	require.NoError(t, s.Close())

	s = openTest(t, dir, opts)
	first, err := s.FirstIndex()
	require.NoError(t, err)
	es, err := s.Entries(first, uint64(len(sizes))+1, 1<<40)
	require.NoError(t, err)
	require.Len(t, es, len(sizes)-int(first)+1)
	for _, e := range es {
		require.Equal(t, bytes.Repeat([]byte{byte(e.Index)}, sizes[e.Index-1]), e.Data)
	}
}
