package wal

import (
	"errors"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"testing"

	"github.com/raftkit/raft"
	"github.com/stretchr/testify/require"
)

// Damage tests: a real log is built once per test, then copies of its files
// are truncated, zeroed, overwritten with garbage or have bits flipped, and
// recovery must either find exactly the state of a prefix of the actions
// (a torn tail) or refuse with an error that names the file and the offset
// of the damaged record.

var damageOptions = Options{SegmentSize: 16 << 10, CacheSize: -1}

// builtLog is a closed log and where each action's batch ended.
type builtLog struct {
	dir  string
	seed int64
	// mixed actions 1..mixed, then append-only ones up to len(ends)-1.
	mixed int
	ends  []endPos // ends[k]: position after action k (ends[0]: before any)
}

type endPos struct {
	seq uint64
	off int64
}

func buildLog(t *testing.T, seed int64, mixed, appendOnly int) *builtLog {
	t.Helper()
	b := &builtLog{dir: t.TempDir(), seed: seed, mixed: mixed}
	s, err := Open(b.dir, &damageOptions)
	require.NoError(t, err)
	s.inlineLimit = -1 // the damage tests expect snapshot files
	pos := func() endPos {
		// mu: the remover goroutine may be cutting segments off s.segs.
		s.mu.RLock()
		defer s.mu.RUnlock()
		sg := s.active()
		return endPos{sg.seq, sg.size}
	}
	b.ends = append(b.ends, pos())
	for k := 1; k <= mixed+appendOnly; k++ {
		require.NoError(t, runWorkload(s, seed, k-1, k, k > mixed))
		b.ends = append(b.ends, pos())
	}
	require.NoError(t, s.Close())
	return b
}

func (b *builtLog) model(n int) *raft.MemoryStorage { return modelAt(b.seed, n, b.mixed) }

// copyTo copies the log's files (not the lock) to a fresh directory.
func (b *builtLog) copyTo(t *testing.T) string {
	dst := t.TempDir()
	ents, err := os.ReadDir(b.dir)
	require.NoError(t, err)
	for _, e := range ents {
		if e.Name() == lockFileName {
			continue
		}
		in, err := os.Open(filepath.Join(b.dir, e.Name()))
		require.NoError(t, err)
		out, err := os.Create(filepath.Join(dst, e.Name()))
		require.NoError(t, err)
		_, err = io.Copy(out, in)
		require.NoError(t, err)
		in.Close()
		require.NoError(t, out.Close())
	}
	return dst
}

func segmentsIn(t *testing.T, dir string) []string {
	m, err := filepath.Glob(filepath.Join(dir, "*"+segmentExt))
	require.NoError(t, err)
	sort.Strings(m)
	return m
}

// recordStarts lists the offsets of the records in a segment file.
func recordStarts(t *testing.T, path string) []int {
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	var starts []int
	for off := 0; off < len(data); {
		_, _, n, err := decodeInSegment(t, path, data, off)
		if err != nil {
			break
		}
		starts = append(starts, off)
		off += n
	}
	return starts
}

// decodeInSegment decodes the record at off in data, the contents of the
// segment file at path: its header from zero, the others from its seed.
func decodeInSegment(t *testing.T, path string, data []byte, off int) (recordType, []byte, int, error) {
	if off == 0 {
		return decodeFrame(data)
	}
	return decodeSeeded(data[off:], segmentSeed(mustSeq(t, path)))
}

// lastActionWithin is the last action whose batch ended at or before off
// in segment seq (or in an earlier segment).
func (b *builtLog) lastActionWithin(seq uint64, off int64) int {
	n := 0
	for k, e := range b.ends {
		if e.seq < seq || (e.seq == seq && e.off <= off) {
			n = k
		}
	}
	return n
}

// requireRecovers opens dir and checks it holds the state after action n.
func (b *builtLog) requireRecovers(t *testing.T, dir string, n int, what string) {
	t.Helper()
	s, err := Open(dir, &damageOptions)
	require.NoError(t, err, what)
	require.NoError(t, sameState(s, b.model(n)), "%s: want the state after action %d", what, n)
	// The recovered log must take new writes and recover them again.
	require.NoError(t, runWorkload(s, b.seed+1, 0, 5, true))
	want := b.model(n)
	require.NoError(t, runWorkload(want, b.seed+1, 0, 5, true))
	require.NoError(t, s.Close())
	s, err = Open(dir, &damageOptions)
	require.NoError(t, err, what)
	require.NoError(t, sameState(s, want), "%s: after writing past the cut", what)
	require.NoError(t, s.Close())
}

func requireCorruptAt(t *testing.T, dir, file string, off int, what string) {
	t.Helper()
	s, err := Open(dir, &damageOptions)
	if err == nil {
		s.Close()
	}
	var ce *CorruptionError
	require.True(t, errors.As(err, &ce), "%s: want a CorruptionError, got %v", what, err)
	require.True(t, errors.Is(err, ErrCorrupt))
	require.Equal(t, file, ce.File, what)
	require.Equal(t, int64(off), ce.Offset, "%s: %v", what, err)
}

// TestTornTail cuts, zeroes or scribbles over the end of the last segment
// at many points; recovery keeps exactly the complete batches before the
// damage.
func TestTornTail(t *testing.T) {
	b := buildLog(t, 11, 150, 200)
	segs := segmentsIn(t, b.dir)
	last := segs[len(segs)-1]
	lastSeq, _ := parseSegmentName(filepath.Base(last))
	starts := recordStarts(t, last)
	end := b.ends[len(b.ends)-1].off
	require.Greater(t, b.lastActionWithin(lastSeq-1, 1<<40), b.mixed, "the last segment must hold only append-only actions")

	rng := rand.New(rand.NewSource(5))
	for i := 0; i < 25; i++ {
		cut := int64(starts[1]) + rng.Int63n(end-int64(starts[1])+1)
		want := b.lastActionWithin(lastSeq, cut)
		for _, mode := range []string{"truncate", "zero", "garbage"} {
			dir := b.copyTo(t)
			path := filepath.Join(dir, filepath.Base(last))
			data, err := os.ReadFile(path)
			require.NoError(t, err)
			switch mode {
			case "truncate":
				data = data[:cut]
			case "zero":
				clear(data[cut:end])
			case "garbage":
				// Random bytes where the lost writes were, as if sectors of
				// the interrupted write hold stale data.
				clear(data[cut:end])
				rng.Read(data[cut:min(end, cut+int64(1+rng.Intn(600)))])
			}
			require.NoError(t, os.WriteFile(path, data, 0o644))
			b.requireRecovers(t, dir, want, mode+" at "+itoa(cut))
		}
	}
}

// TestBitFlipInSealedSegment: any flipped bit in a sealed segment is
// reported at the record that holds it.
func TestBitFlipInSealedSegment(t *testing.T) {
	b := buildLog(t, 12, 150, 50)
	segs := segmentsIn(t, b.dir)
	require.Greater(t, len(segs), 2)
	rng := rand.New(rand.NewSource(6))
	for i := 0; i < 30; i++ {
		seg := segs[rng.Intn(len(segs)-1)]
		starts := recordStarts(t, seg)
		info, err := os.Stat(seg)
		require.NoError(t, err)
		at := rng.Int63n(info.Size())
		rec := sort.SearchInts(starts, int(at)+1) - 1

		dir := b.copyTo(t)
		path := filepath.Join(dir, filepath.Base(seg))
		flipBit(t, path, at, uint(rng.Intn(8)))
		requireCorruptAt(t, dir, path, starts[rec], "flip at "+itoa(at))
	}
}

// TestBitFlipInLastSegment: damage followed by complete batches is
// corruption; damage in the final batch is treated as a torn write.
func TestBitFlipInLastSegment(t *testing.T) {
	b := buildLog(t, 13, 100, 200)
	segs := segmentsIn(t, b.dir)
	last := segs[len(segs)-1]
	lastSeq, _ := parseSegmentName(filepath.Base(last))
	starts := recordStarts(t, last)
	end := b.ends[len(b.ends)-1].off
	finalBatch := b.ends[len(b.ends)-2].off // where the last action's batch starts
	require.Equal(t, lastSeq, b.ends[len(b.ends)-2].seq)

	rng := rand.New(rand.NewSource(7))
	for i := 0; i < 30; i++ {
		at := int64(starts[1]) + rng.Int63n(end-int64(starts[1]))
		if i%4 == 0 {
			at = finalBatch + rng.Int63n(end-finalBatch)
		}
		rec := sort.SearchInts(starts, int(at)+1) - 1
		dir := b.copyTo(t)
		path := filepath.Join(dir, filepath.Base(last))
		flipBit(t, path, at, uint(rng.Intn(8)))
		if at < finalBatch {
			requireCorruptAt(t, dir, path, starts[rec], "flip at "+itoa(at))
		} else {
			b.requireRecovers(t, dir, len(b.ends)-2, "flip in the final batch at "+itoa(at))
		}
	}
}

func TestDamagedSnapshotFile(t *testing.T) {
	b := buildLog(t, 14, 200, 0)
	snaps, err := filepath.Glob(filepath.Join(b.dir, "*"+snapExt))
	require.NoError(t, err)
	require.Len(t, snaps, 1, "exactly the current snapshot file is kept")
	info, err := os.Stat(snaps[0])
	require.NoError(t, err)
	dir := b.copyTo(t)
	path := filepath.Join(dir, filepath.Base(snaps[0]))
	flipBit(t, path, info.Size()/2, 3)
	requireCorruptAt(t, dir, path, 0, "flipped snapshot")

	dir = b.copyTo(t)
	require.NoError(t, os.Remove(filepath.Join(dir, filepath.Base(snaps[0]))))
	_, err = Open(dir, &damageOptions)
	require.ErrorIs(t, err, os.ErrNotExist)
}

func TestMissingSegment(t *testing.T) {
	b := buildLog(t, 15, 60, 150)
	segs := segmentsIn(t, b.dir)
	require.Greater(t, len(segs), 2)
	dir := b.copyTo(t)
	require.NoError(t, os.Remove(filepath.Join(dir, filepath.Base(segs[1]))))
	_, err := Open(dir, &damageOptions)
	require.ErrorIs(t, err, ErrCorrupt)
	require.ErrorContains(t, err, segmentName(mustSeq(t, segs[1]))+" is missing")
}

// TestLeftoversAreIgnored: temporary files from interrupted snapshot or
// segment writes do not disturb recovery.
func TestLeftoversAreIgnored(t *testing.T) {
	b := buildLog(t, 16, 50, 10)
	dir := b.copyTo(t)
	for _, name := range []string{segmentName(999) + tmpSuffix, "x.snap" + tmpSuffix} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte("partial"), 0o644))
	}
	b.requireRecovers(t, dir, len(b.ends)-1, "with leftovers")
	left, err := filepath.Glob(filepath.Join(dir, "*"+tmpSuffix))
	require.NoError(t, err)
	// Recycled segments' files (recycle.go) are kept, not leftovers.
	pooled, err := filepath.Glob(filepath.Join(dir, "*"+recycledSuffix))
	require.NoError(t, err)
	require.Equal(t, pooled, left)
}

// TestCorruptionFoundOnRead: entries read back from disk are verified
// again; damage after Open surfaces as an error from Entries.
func TestCorruptionFoundOnRead(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, &Options{CacheSize: -1})
	require.NoError(t, s.Append(ents(1, 1, 1, 1, 1, 1, 1)))
	path := s.SegmentPaths()[0]
	starts := recordStarts(t, path)
	flipBit(t, path, int64(starts[3])+frameHeaderSize+2, 0) // inside entry 3's record
	_, err := s.Entries(1, 7, 1<<30)
	var ce *CorruptionError
	require.True(t, errors.As(err, &ce), "%v", err)
	require.Equal(t, int64(starts[3]), ce.Offset)
	got, err := s.Entries(1, 3, 1<<30)
	require.NoError(t, err, "records before the damage still read")
	require.Len(t, got, 2)
}

func TestDirectoryLock(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, nil)
	_, err := Open(dir, nil)
	require.ErrorIs(t, err, ErrLocked)
	require.NoError(t, s.Close())
	s2 := openTest(t, dir, nil)
	require.NoError(t, s2.Close())
	require.ErrorIs(t, s2.Close(), ErrClosed)
	_, err = s2.LastIndex()
	require.ErrorIs(t, err, ErrClosed)
	require.ErrorIs(t, s2.Append(ents(1, 1)), ErrClosed)
}

func flipBit(t *testing.T, path string, at int64, bit uint) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	require.NoError(t, err)
	defer f.Close()
	var b [1]byte
	_, err = f.ReadAt(b[:], at)
	require.NoError(t, err)
	b[0] ^= 1 << bit
	_, err = f.WriteAt(b[:], at)
	require.NoError(t, err)
}

func mustSeq(t *testing.T, path string) uint64 {
	seq, ok := parseSegmentName(filepath.Base(path))
	require.True(t, ok)
	return seq
}

func itoa(n int64) string { return fmtInt(n) }

func fmtInt(n int64) string { return strconv.FormatInt(n, 10) }
