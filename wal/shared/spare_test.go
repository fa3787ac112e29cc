package shared

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/require"

	pb "github.com/raftkit/raft/raftpb"
)

// spareOptions rotate often and keep every segment (no relocation), with
// fsyncs on: without them there are no spares.
var spareOptions = Options{SegmentSize: 32 << 10, MaxSegments: 1000, GroupCacheSize: 1 << 10}

// spareSignal returns a channel the spare goroutine signals after each
// preparation, installed before anything asks for one.
func spareSignal(w *WAL) <-chan struct{} {
	ch := make(chan struct{}, 1)
	w.spare.hook = func(step string) {
		if step == "spare-done" {
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}
	return ch
}

// settleSpare waits until the spare goroutine has nothing to do, so that
// whether the next rotation finds a spare does not depend on timing. The
// timeout only guards against a hang.
func settleSpare(t *testing.T, w *WAL, done <-chan struct{}) {
	t.Helper()
	for w.sparePending() {
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Fatal("the spare goroutine did not finish")
		}
	}
}

// writeSettled appends n entries of size bytes to group id, one synced
// batch each, compacting behind itself when compact is set, and lets the
// spare goroutine finish after each batch.
func writeSettled(t *testing.T, w *WAL, done <-chan struct{}, id uint64, n, size int, compact bool) {
	t.Helper()
	g := mustGroup(t, w, id)
	last, err := g.LastIndex()
	require.NoError(t, err)
	for k := 1; k <= n; k++ {
		i := last + uint64(k)
		e := pb.Entry{Index: i, Term: 1, Data: make([]byte, size)}
		require.NoError(t, w.SaveBatch([]GroupUpdate{{GroupID: id, HardState: pb.HardState{Term: 1, Commit: i}, Entries: []pb.Entry{e}}}))
		if compact && i > 2 {
			require.NoError(t, g.Compact(i-2))
		}
		settleSpare(t, w, done)
	}
}

// spareFiles lists the spares' files in dir.
func spareFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "spare-*"+tmpSuffix))
	require.NoError(t, err)
	return m
}

// unwrittenBytes returns how many bytes of the file at path lie in extents
// the file system marks unwritten (allocated by fallocate, never written),
// or -1 if it cannot tell (no FIEMAP).
func unwrittenBytes(t *testing.T, path string) int64 {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	const (
		fsIocFiemap       = 0xC020660B
		fiemapFlagSync    = 0x1
		extentLast        = 0x1
		extentUnwritten   = 0x800
		maxExtents        = 64
		fiemapHeaderBytes = 32
		extentBytes       = 56
	)
	var total int64
	for start := uint64(0); ; {
		buf := make([]byte, fiemapHeaderBytes+maxExtents*extentBytes)
		hdr := (*[4]uint64)(unsafe.Pointer(&buf[0]))
		hdr[0], hdr[1] = start, ^uint64(0)
		*(*uint32)(unsafe.Pointer(&buf[16])) = fiemapFlagSync
		*(*uint32)(unsafe.Pointer(&buf[24])) = maxExtents
		if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, f.Fd(), fsIocFiemap, uintptr(unsafe.Pointer(&buf[0]))); e != 0 {
			return -1
		}
		n := int(*(*uint32)(unsafe.Pointer(&buf[20])))
		if n == 0 {
			return total
		}
		for k := 0; k < n; k++ {
			ext := buf[fiemapHeaderBytes+k*extentBytes:]
			logical := *(*uint64)(unsafe.Pointer(&ext[0]))
			length := *(*uint64)(unsafe.Pointer(&ext[16]))
			flags := *(*uint32)(unsafe.Pointer(&ext[40]))
			if flags&extentUnwritten != 0 {
				total += int64(length)
			}
			start = logical + length
			if flags&extentLast != 0 {
				return total
			}
		}
	}
}

// TestSpareSegmentsAreWritten: past the first segment, every segment is a
// spare prepared off the write path, whose blocks were written with zeros
// before any append lands in them, so no append converts an unwritten
// extent (the journal commit each fdatasync then pays).
func TestSpareSegmentsAreWritten(t *testing.T) {
	dir := t.TempDir()
	w := openTest(t, dir, &spareOptions)
	done := spareSignal(w)
	mustCreate(t, w, 1)
	require.False(t, w.active().prewritten, "the first segment is not waited for at Open")
	first := w.SegmentPaths()[0]
	if unwrittenBytes(t, first) <= 0 {
		t.Skip("the file system reports no unwritten extents for fallocated space")
	}
	writeSettled(t, w, done, 1, 200, 1000, false) // ~200 KiB: several segments
	st := w.Stats()
	require.GreaterOrEqual(t, st.SparesUsed, uint64(4), "%+v", st)
	paths := w.SegmentPaths()
	require.Equal(t, uint64(len(paths)-1), st.SparesUsed, "every segment but the first was a spare")
	for _, p := range paths[1:] {
		require.Zero(t, unwrittenBytes(t, p), "%s holds unwritten extents", p)
	}
	require.True(t, w.active().prewritten)
	want := summarizeAll(t, w)
	require.NoError(t, w.Close())
	require.Empty(t, spareFiles(t, dir), "Close deletes the spare")
	w = openTest(t, dir, &spareOptions)
	require.Equal(t, want, summarizeAll(t, w))
}

// TestFirstSegmentRotatesEarly: Open does not wait for a pre-written
// segment; once the new WAL has taken some data it asks for a spare and,
// as soon as it is ready, leaves the fallocated first segment for it, long
// before that segment is full.
func TestFirstSegmentRotatesEarly(t *testing.T) {
	dir := t.TempDir()
	opts := spareOptions
	opts.SegmentSize = 1 << 20
	w := openTest(t, dir, &opts)
	done := spareSignal(w)
	mustCreate(t, w, 1)
	require.Zero(t, w.Stats().SparesPrepared, "no spare before any data")
	for k := 0; !w.spare.asked && k < 1000; k++ {
		writeSettled(t, w, done, 1, 1, 1000, false)
	}
	require.True(t, w.spare.asked, "a spare was asked for")
	require.Less(t, w.active().size, opts.SegmentSize/2)
	require.Equal(t, uint64(1), w.Stats().SparesPrepared)
	require.Len(t, w.SegmentPaths(), 1, "no rotation before the next batch")
	writeSettled(t, w, done, 1, 1, 1000, false)
	st := w.Stats()
	require.Len(t, w.SegmentPaths(), 2, "the next batch moved into the spare")
	require.Equal(t, uint64(1), st.SparesUsed)
	require.True(t, w.active().prewritten)
}

// TestSpareZerosArePaced: the goroutine rests after every chunk of zeros,
// in proportion to the time the chunk took, so that the spare leaves the
// device to the group commit's fsyncs most of the time.
func TestSpareZerosArePaced(t *testing.T) {
	opts := spareOptions
	opts.SegmentSize = 1 << 20
	w := openTest(t, t.TempDir(), &opts)
	done := spareSignal(w)
	var rests []time.Duration // written by the spare goroutine, read after settleSpare
	w.spare.restHook = func(d time.Duration) { rests = append(rests, d) }
	mustCreate(t, w, 1)
	for k := 0; w.Stats().SparesPrepared == 0 && k < 1000; k++ {
		writeSettled(t, w, done, 1, 1, 4000, false)
	}
	require.Equal(t, uint64(1), w.Stats().SparesPrepared)
	chunks := (w.spareSize() + spareChunk - 1) / spareChunk
	require.Len(t, rests, int(chunks), "one rest per chunk of zeros")
	for _, d := range rests {
		require.Positive(t, d)
	}
}

// residentFraction returns the fraction of the file at path's pages that
// are in the page cache (mincore over a read-only mapping).
func residentFraction(t *testing.T, path string) float64 {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	size := int(sizeOf(f))
	require.Positive(t, size)
	m, err := syscall.Mmap(int(f.Fd()), 0, size, syscall.PROT_READ, syscall.MAP_SHARED)
	require.NoError(t, err)
	defer syscall.Munmap(m)
	page := os.Getpagesize()
	vec := make([]byte, (size+page-1)/page)
	_, _, e := syscall.Syscall(syscall.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(size), uintptr(unsafe.Pointer(&vec[0])))
	require.Zero(t, e, "mincore")
	in := 0
	for _, v := range vec {
		in += int(v & 1)
	}
	return float64(in) / float64(len(vec))
}

// TestSpareZerosStayCached: the spare's zeros go through the page cache
// and stay there, so that an append starting a page of the segment
// overwrites a cached page instead of reading it from the disk first
// (which zeros written around the cache, with O_DIRECT, made every such
// append do).
func TestSpareZerosStayCached(t *testing.T) {
	opts := spareOptions
	opts.SegmentSize = 1 << 20
	w := openTest(t, t.TempDir(), &opts)
	done := spareSignal(w)
	mustCreate(t, w, 1)
	for k := 0; w.Stats().SparesPrepared == 0 && k < 1000; k++ {
		writeSettled(t, w, done, 1, 1, 4000, false)
	}
	require.Equal(t, uint64(1), w.Stats().SparesPrepared)
	w.spare.mu.Lock()
	path := w.spare.fPath
	w.spare.mu.Unlock()
	require.NotEmpty(t, path)
	// Half, not all: the kernel may evict clean pages at any time.
	require.Greater(t, residentFraction(t, path), 0.5, "the spare's pages are not cached")
}

// TestCloseEndsSpareRest: Close does not wait for the pacing of a spare
// being prepared; the half-made spare is deleted.
func TestCloseEndsSpareRest(t *testing.T) {
	opts := spareOptions
	opts.SegmentSize = 1 << 20
	dir := t.TempDir()
	w := openTest(t, dir, &opts)
	resting := make(chan struct{}, 1)
	w.spare.restHook = func(time.Duration) {
		select {
		case resting <- struct{}{}:
		default:
		}
		<-w.spare.stop // rests until Close
	}
	mustCreate(t, w, 1)
	for i := uint64(1); !w.spare.asked && i < 1000; i++ {
		e := pb.Entry{Index: i, Term: 1, Data: make([]byte, 4000)}
		require.NoError(t, w.SaveBatch([]GroupUpdate{{GroupID: 1, HardState: pb.HardState{Term: 1, Commit: i}, Entries: []pb.Entry{e}}}))
	}
	require.True(t, w.spare.asked)
	select {
	case <-resting:
	case <-time.After(30 * time.Second):
		t.Fatal("the spare goroutine never rested")
	}
	require.NoError(t, w.Close())
	require.Empty(t, spareFiles(t, dir), "Close deletes the half-made spare")
	require.Zero(t, w.Stats().SparesPrepared)
}

// TestSmallWALPreparesNoSpare: a WAL that writes little (most tests, idle
// hosts) never writes a segment of zeros; nor does one without fsyncs.
func TestSmallWALPreparesNoSpare(t *testing.T) {
	for _, opts := range []Options{{}, {NoSync: true, SegmentSize: 32 << 10}} {
		w := openTest(t, t.TempDir(), &opts)
		done := spareSignal(w)
		mustCreate(t, w, 1)
		writeSettled(t, w, done, 1, 100, 1000, false)
		if opts.NoSync {
			writeSettled(t, w, done, 1, 200, 1000, false)
		}
		require.Zero(t, w.Stats().SparesPrepared, "%+v", opts)
		require.Empty(t, spareFiles(t, w.Dir()))
	}
}

// TestCompactedSegmentIsRecycled: a segment freed by compaction becomes
// the next spare instead of being deleted; it is zeroed whole before it is
// used, so nothing of the old segment's records follows the new one's data.
func TestCompactedSegmentIsRecycled(t *testing.T) {
	dir := t.TempDir()
	w := openTest(t, dir, &spareOptions)
	done := spareSignal(w)
	mustCreate(t, w, 1)
	writeSettled(t, w, done, 1, 300, 1000, true)
	st := w.Stats()
	require.Positive(t, st.SegmentsRecycled, "%+v", st)
	require.LessOrEqual(t, len(segmentFiles(t, dir)), 2, "compaction keeps the segments bounded")
	sg := w.active()
	data, err := os.ReadFile(sg.path)
	require.NoError(t, err)
	require.True(t, allZero(data[sg.size:]), "old bytes after the data of segment %d", sg.seq)
	want := summarizeAll(t, w)
	require.NoError(t, w.Close())
	w = openTest(t, dir, &spareOptions)
	require.Equal(t, want, summarizeAll(t, w))
}

// TestNewSpareDuringInstall: a preparation that starts while rotation is
// installing the previous spare (a kick left over from before) works on a
// file of its own, and the installed segment keeps its header.
func TestNewSpareDuringInstall(t *testing.T) {
	dir := t.TempDir()
	w := openTest(t, dir, &spareOptions)
	done, started := make(chan struct{}, 1), make(chan struct{}, 1)
	raced := false
	w.spare.hook = func(step string) {
		switch step {
		case "spare-done":
			select {
			case done <- struct{}{}:
			default:
			}
		case "spare-start":
			select {
			case started <- struct{}{}:
			default:
			}
		case "header-written":
			if raced {
				return
			}
			raced = true
			<-started // drain the signal of the spare being installed
			w.spare.mu.Lock()
			w.spare.kickLocked()
			w.spare.mu.Unlock()
			select {
			case <-started:
			case <-time.After(30 * time.Second):
				t.Error("no new spare was started")
			}
		}
	}
	mustCreate(t, w, 1)
	writeSettled(t, w, done, 1, 100, 1000, false)
	require.True(t, raced)
	require.GreaterOrEqual(t, w.Stats().SparesUsed, uint64(2))
	want := summarizeAll(t, w)
	require.NoError(t, w.Close())
	w = openTest(t, dir, &spareOptions)
	require.Equal(t, want, summarizeAll(t, w))
}

// TestSpareFailureFallsBack: a spare that cannot be prepared (here its
// file name is taken by a directory) is counted, and rotation creates the
// segment itself; the next spare works and nothing is lost.
func TestSpareFailureFallsBack(t *testing.T) {
	dir := t.TempDir()
	w := openTest(t, dir, &spareOptions)
	done := spareSignal(w)
	require.NoError(t, os.Mkdir(filepath.Join(dir, spareName(1)), 0o755))
	mustCreate(t, w, 1)
	writeSettled(t, w, done, 1, 120, 1000, false)
	st := w.Stats()
	require.Equal(t, uint64(1), st.SpareFailures, "%+v", st)
	require.Positive(t, st.SparesUsed, "%+v", st)
	require.Less(t, st.SparesUsed, uint64(len(w.SegmentPaths())-1), "a segment was created without a spare")
	want := summarizeAll(t, w)
	require.NoError(t, w.Close())
	w = openTest(t, dir, &spareOptions)
	require.Equal(t, want, summarizeAll(t, w))
}
