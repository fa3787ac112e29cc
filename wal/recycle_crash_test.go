package wal

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	pb "github.com/raftkit/raft/raftpb"
)

const recycleSegSize = 16 << 10

// recycledRotation is a real rotation into a recycled spare: segment 1
// compacted and recycled, segments 2 and 3 sealed, segment 4 made of
// segment 1's file.
type recycledRotation struct {
	old        []byte   // segment 1's file before it was recycled
	sealed     [][]byte // segments 2 and 3 after Close
	spare      []byte   // segment 4's file as a spare, before rotation
	seg4       []byte   // segment 4's file after Close
	hdrLen     int      // segment 4's header
	first      uint64   // the first index after the compaction
	atRotation uint64   // the last index when segment 4 was started
	last       uint64   // the last index written in all
	// ends maps the end offset of each batch in segment 4 to the last
	// index once that batch is in.
	ends map[int]uint64
}

func buildRecycledRotation(t *testing.T) recycledRotation {
	dir := t.TempDir()
	s, err := Open(dir, &Options{SegmentSize: recycleSegSize})
	require.NoError(t, err)
	s.noSpare = true
	var rr recycledRotation
	next, first2 := appendUntilSegment(t, s, 1, 2, 512)
	next, _ = appendUntilSegment(t, s, next, 3, 512)
	rr.old, err = os.ReadFile(filepath.Join(dir, segmentName(1)))
	require.NoError(t, err)
	require.NoError(t, s.Compact(first2))
	rr.first = first2 + 1
	waitUntil(t, "segment 1 in the pool", func() bool { return poolLen(s) == 1 })
	s.prepareSpare()
	require.Equal(t, uint64(1), spareReused(s))
	rr.spare, err = os.ReadFile(filepath.Join(dir, segmentName(4)))
	require.NoError(t, err)
	require.False(t, allZero(rr.spare[spareClearSize:]), "the spare must hold old bytes past its cleared start")
	next, _ = appendUntilSegment(t, s, next, 4, 512)
	rr.atRotation = next - 2 // the entry that rotated went to segment 4
	next = appendN(t, s, next, 12, 512)
	rr.last = next - 1
	require.NoError(t, s.Close())
	for _, seq := range []uint64{2, 3} {
		b, err := os.ReadFile(filepath.Join(dir, segmentName(seq)))
		require.NoError(t, err)
		rr.sealed = append(rr.sealed, b)
	}
	path := filepath.Join(dir, segmentName(4))
	rr.seg4, err = os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, len(rr.spare), len(rr.seg4))
	rr.ends = map[int]uint64{}
	_, _, rr.hdrLen, err = decodeFrame(rr.seg4)
	require.NoError(t, err)
	idx := rr.atRotation
	for off := rr.hdrLen; len(rr.ends) < int(rr.last-rr.atRotation); {
		typ, payload, n, err := decodeInSegment(t, path, rr.seg4, off)
		if err != nil {
			break
		}
		if typ == recEntry {
			idx, _, _ = entryID(payload)
		}
		off += n
		if typ == recBatchEnd {
			rr.ends[off] = idx
		}
	}
	require.Len(t, rr.ends, int(rr.last-rr.atRotation))
	return rr
}

// openRecycled writes the sealed segments 2 and 3, seg4 as segment 4 unless
// nil, and extra files, into a new directory and opens it.
func (rr *recycledRotation) open(t *testing.T, seg4 []byte, extra map[string][]byte) (string, *Storage, error) {
	dir := t.TempDir()
	for k, b := range rr.sealed {
		require.NoError(t, os.WriteFile(filepath.Join(dir, segmentName(uint64(k+2))), b, 0o644))
	}
	if seg4 != nil {
		require.NoError(t, os.WriteFile(filepath.Join(dir, segmentName(4)), seg4, 0o644))
	}
	for name, b := range extra {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), b, 0o644))
	}
	s, err := Open(dir, &Options{SegmentSize: recycleSegSize})
	return dir, s, err
}

// requireRecovers opens the crashed state and checks the log: entries
// rr.first to last, all readable, and whether segment 4 is still there.
func (rr *recycledRotation) requireRecovers(t *testing.T, seg4 []byte, extra map[string][]byte, last uint64, keeps4 bool, what string) {
	t.Helper()
	dir, s, err := rr.open(t, seg4, extra)
	require.NoError(t, err, what)
	defer s.Close()
	first, err := s.FirstIndex()
	require.NoError(t, err)
	require.Equal(t, rr.first, first, what)
	got, err := s.LastIndex()
	require.NoError(t, err)
	require.Equal(t, last, got, what)
	es, err := s.Entries(first, last+1, 1<<30)
	require.NoError(t, err, what)
	require.Len(t, es, int(last+1-first), what)
	require.Equal(t, keeps4, exists(filepath.Join(dir, segmentName(4))), what)
	// Leftovers are gone; a file of the pool is taken back into it.
	tmps, err := filepath.Glob(filepath.Join(dir, "*"+tmpSuffix))
	require.NoError(t, err)
	pooled, err := filepath.Glob(filepath.Join(dir, "*"+recycledSuffix))
	require.NoError(t, err)
	require.Equal(t, pooled, tmps, what)
	require.Equal(t, len(pooled), poolLen(s), what)
}

func (rr *recycledRotation) requireCorrupt(t *testing.T, seg4 []byte, what string) {
	t.Helper()
	_, s, err := rr.open(t, seg4, nil)
	if err == nil {
		s.Close()
	}
	var ce *CorruptionError
	require.True(t, errors.As(err, &ce), "%s: want a CorruptionError, got %v", what, err)
}

// TestCrashAtEveryStepOfARecycledRotation builds, from a real rotation into
// a recycled spare, what a power loss can leave at each step of the
// recycling (recycle.go) and of the rotation, and checks that recovery
// keeps every entry written before it, takes the spare for unused, and
// never reads the recycled file's old records; and that damage a crash
// cannot explain is still reported.
func TestCrashAtEveryStepOfARecycledRotation(t *testing.T) {
	rr := buildRecycledRotation(t)
	hdr := rr.seg4[:rr.hdrLen]

	// Step 1: the compacted segment renamed or not.
	rr.requireRecovers(t, nil, map[string][]byte{segmentName(1): rr.old}, rr.atRotation, false, "segment 1 not yet renamed")
	rr.requireRecovers(t, nil, map[string][]byte{recycledName(1): rr.old}, rr.atRotation, false, "segment 1 in the pool")
	// Step 2: cleared, still under its temporary name.
	rr.requireRecovers(t, nil, map[string][]byte{recycledName(1): rr.spare}, rr.atRotation, false, "cleared in the pool")
	// Step 3: renamed to the spare's name.
	rr.requireRecovers(t, rr.spare, nil, rr.atRotation, false, "recycled spare")
	// Step 4: the header torn, any prefix or suffix of it over the zeros.
	for cut := 0; cut < rr.hdrLen; cut++ {
		prefix := append([]byte(nil), rr.spare...)
		copy(prefix, hdr[:cut])
		suffix := append([]byte(nil), rr.spare...)
		copy(suffix[cut:], hdr[cut:])
		for _, torn := range [][]byte{prefix, suffix} {
			if bytes.Equal(torn[:rr.hdrLen], hdr) {
				continue
			}
			rr.requireRecovers(t, torn, nil, rr.atRotation, false, "header torn at "+itoa(int64(cut)))
		}
	}
	// The header durable, no batch yet: a segment, holding old bytes
	// after the zeros.
	started := append(append([]byte(nil), hdr...), rr.spare[rr.hdrLen:]...)
	rr.requireRecovers(t, started, nil, rr.atRotation, true, "header only")
	// All of it.
	rr.requireRecovers(t, rr.seg4, nil, rr.last, true, "complete")

	// Damage no crash leaves.
	for k := 0; k < rr.hdrLen; k += 7 {
		bad := append([]byte(nil), started...)
		bad[k] ^= 0x80
		rr.requireCorrupt(t, bad, "header byte "+itoa(int64(k))+" flipped")
	}
	stray := append([]byte(nil), rr.spare...)
	stray[rr.hdrLen+100] = 1
	rr.requireCorrupt(t, stray, "stray byte in the cleared start")
	headless := append([]byte(nil), rr.seg4...)
	clear(headless[:rr.hdrLen])
	rr.requireCorrupt(t, headless, "batches after a zeroed header")
	cleared := append([]byte(nil), rr.seg4...)
	clear(cleared[:spareClearSize])
	rr.requireCorrupt(t, cleared, "batch ends of segment 4 past a zeroed start")
}

// TestTornWriteOverRecycledRecords: a write into a recycled segment cut
// short at any byte leaves the new bytes up to the cut and the file's old
// bytes (a segment of its earlier life) after it. Recovery keeps exactly
// the batches complete before the cut, and reads none of the old records,
// which sit where the next records would be and checksum correctly under
// the old segment's seed. Zeroed tails (a lost page) likewise.
func TestTornWriteOverRecycledRecords(t *testing.T) {
	rr := buildRecycledRotation(t)
	end := 0
	for e := range rr.ends {
		end = max(end, e)
	}
	lastStart := 0
	for e := range rr.ends {
		if e < end {
			lastStart = max(lastStart, e)
		}
	}
	// A batch counts as complete when the torn file holds all of it: the
	// old bytes after a cut may be the very bytes the write would have
	// put there (entries of zeros at the same offsets).
	want := func(torn []byte) uint64 {
		same := 0
		for same < end && torn[same] == rr.seg4[same] {
			same++
		}
		got := rr.atRotation
		for e, idx := range rr.ends {
			if e <= same && idx > got {
				got = idx
			}
		}
		return got
	}
	for cut := rr.hdrLen; cut <= end; cut++ {
		if cut < lastStart && cut%13 != 0 {
			continue // every byte of the last batch, a sample before
		}
		old := append(append([]byte(nil), rr.seg4[:cut]...), rr.spare[cut:]...)
		rr.requireRecovers(t, old, nil, want(old), true, "old bytes from "+itoa(int64(cut)))
		zero := append([]byte(nil), rr.seg4...)
		clear(zero[cut:end])
		rr.requireRecovers(t, zero, nil, want(zero), true, "zeros from "+itoa(int64(cut)))
	}
}

// TestLongHeaderSkipsRecycledSpare: a header too long for a recycled
// spare's cleared start (a snapshot's ConfState of many members) makes
// rotation create a new file instead, so that a crash before the header
// is written leaves the zeros recovery takes for an unused spare, not old
// bytes it must report.
func TestLongHeaderSkipsRecycledSpare(t *testing.T) {
	dir := t.TempDir()
	opts := &Options{SegmentSize: recycleSegSize}
	s := openTest(t, dir, opts)
	s.noSpare = true
	voters := make([]uint64, 1000)
	for k := range voters {
		voters[k] = uint64(k + 1)
	}
	require.NoError(t, s.ApplySnapshot(pb.Snapshot{Metadata: pb.SnapshotMetadata{
		Index: 1, Term: 1, ConfState: pb.ConfState{Voters: voters}}}))
	require.Greater(t, len(segmentHeaderBytes(4, s.st.checkpoint())), spareClearSize)
	data := bytes.Repeat([]byte{0xab}, 512)
	next := uint64(2)
	appendTo := func(seq uint64) uint64 {
		for activeSeq(s) < seq {
			require.NoError(t, s.Append([]pb.Entry{{Index: next, Term: 1, Data: data}}))
			next++
		}
		return next - 1
	}
	first2 := appendTo(2)
	appendTo(3)
	require.NoError(t, s.Compact(first2))
	waitUntil(t, "segment 1 in the pool", func() bool { return poolLen(s) == 1 })
	s.prepareSpare()
	require.Equal(t, uint64(1), spareReused(s))
	path := filepath.Join(dir, segmentName(4))
	var started []byte
	s.afterNewSegment = func() {
		var err error
		started, err = os.ReadFile(path)
		require.NoError(t, err)
	}
	appendTo(4)
	require.Zero(t, spareUsed(s), "rotation took the recycled spare")
	atRotation := next - 2
	require.NoError(t, s.Close())

	_, _, hdrLen, err := decodeFrame(started)
	require.NoError(t, err)
	torn := append([]byte(nil), started...)
	clear(torn[:hdrLen]) // the header never reached the disk
	require.NoError(t, os.WriteFile(path, torn, 0o644))
	s = openTest(t, dir, opts)
	last, err := s.LastIndex()
	require.NoError(t, err)
	require.Equal(t, atRotation, last)
	require.False(t, exists(path))
	require.NoError(t, s.Close())
}
