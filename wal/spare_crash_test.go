package wal

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestRotationWithSpareSyncsNoDirectory: the spare is created under its
// segment's name with the directory synced then, so rotating into it
// renames nothing and syncs no directory under the write lock.
func TestRotationWithSpareSyncsNoDirectory(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, &Options{SegmentSize: 64 << 10})
	next := appendN(t, s, 1, 70, 512)
	waitUntil(t, "the spare of segment 2", func() bool { return spareReady(s) })
	before := dirSyncs.Load()
	for s.Stats().Segments == 1 {
		next = appendN(t, s, next, 1, 512)
	}
	require.Equal(t, uint64(1), spareUsed(s))
	require.Equal(t, before, dirSyncs.Load(), "rotation into the spare synced the directory")
}

// rotationFiles are the two segment files around a rotation into a spare,
// and what the log held when it rotated.
type rotationFiles struct {
	seg1, seg2 []byte // after Close: segment 1 sealed, segment 2 started
	hdrLen     int    // segment 2's header
	atRotation uint64 // last index when segment 2 was started
	beforeSeg1 []byte // segment 1 while the unused spare existed, unsealed
	beforeLast uint64 // the last index then
	spareSize  int
	last       uint64 // the last index written in all
}

const spareCrashSegSize = 64 << 10

func buildRotation(t *testing.T) rotationFiles {
	dir := t.TempDir()
	s, err := Open(dir, &Options{SegmentSize: spareCrashSegSize})
	require.NoError(t, err)
	next := appendN(t, s, 1, 70, 512)
	waitUntil(t, "the spare of segment 2", func() bool { return spareReady(s) })
	var rf rotationFiles
	var err1 error
	rf.beforeLast = next - 1
	rf.beforeSeg1, err1 = os.ReadFile(filepath.Join(dir, segmentName(1)))
	require.NoError(t, err1)
	spare, err := os.ReadFile(filepath.Join(dir, segmentName(2)))
	require.NoError(t, err)
	require.True(t, allZero(spare))
	rf.spareSize = len(spare)
	for s.Stats().Segments == 1 {
		rf.atRotation = next - 1
		next = appendN(t, s, next, 1, 512)
	}
	require.Equal(t, uint64(1), spareUsed(s))
	rf.last = next - 1
	require.NoError(t, s.Close())
	rf.seg1, err = os.ReadFile(filepath.Join(dir, segmentName(1)))
	require.NoError(t, err)
	rf.seg2, err = os.ReadFile(filepath.Join(dir, segmentName(2)))
	require.NoError(t, err)
	_, _, rf.hdrLen, err = decodeFrame(rf.seg2)
	require.NoError(t, err)
	return rf
}

// openCrashed writes seg1 and seg2 as segments 1 and 2 of a new directory
// and opens it.
func openCrashed(t *testing.T, seg1, seg2 []byte) (string, *Storage, error) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, segmentName(1)), seg1, 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, segmentName(2)), seg2, 0o644))
	s, err := Open(dir, &Options{SegmentSize: spareCrashSegSize})
	return dir, s, err
}

// requireDroppedSpare opens the crashed state and checks that segment 2
// was taken for an unused spare: deleted, and the log as it was at the
// rotation.
func requireDroppedSpare(t *testing.T, seg1, seg2 []byte, last uint64, what string) {
	dir, s, err := openCrashed(t, seg1, seg2)
	require.NoError(t, err, what)
	defer s.Close()
	require.Equal(t, 1, s.Stats().Segments, what)
	require.False(t, exists(filepath.Join(dir, segmentName(2))), what)
	got, err := s.LastIndex()
	require.NoError(t, err)
	require.Equal(t, last, got, what)
	es, err := s.Entries(1, last+1, 1<<30)
	require.NoError(t, err, what)
	require.Len(t, es, int(last), what)
}

// TestCrashAtEveryStepOfASpareRotation builds, from a real rotation into a
// spare, every state a power loss can leave at each step of the spare's
// creation and of the rotation, and checks that recovery keeps every entry
// written before it and takes the spare for unused; and that damage a
// crash cannot explain is still reported.
func TestCrashAtEveryStepOfASpareRotation(t *testing.T) {
	rf := buildRotation(t)
	zeros := make([]byte, rf.spareSize)
	hdr := rf.seg2[:rf.hdrLen]

	// The spare created (empty, or preallocated) while segment 1 was
	// active and unsealed.
	requireDroppedSpare(t, rf.beforeSeg1, nil, rf.beforeLast, "empty spare")
	requireDroppedSpare(t, rf.beforeSeg1, zeros, rf.beforeLast, "preallocated spare")
	// Segment 1 sealed, the header not (or partly) written: any prefix
	// or suffix of its bytes may have reached the disk.
	requireDroppedSpare(t, rf.seg1, zeros, rf.atRotation, "sealed, no header")
	for cut := 0; cut < rf.hdrLen; cut++ {
		prefix := append([]byte(nil), zeros...)
		copy(prefix, hdr[:cut])
		suffix := append([]byte(nil), zeros...)
		copy(suffix[cut:], hdr[cut:])
		for _, torn := range [][]byte{prefix, suffix} {
			if bytes.Equal(torn[:rf.hdrLen], hdr) {
				continue // the missing bytes are zeros anyway: the whole header
			}
			requireDroppedSpare(t, rf.seg1, torn, rf.atRotation, "header torn at "+itoa(int64(cut)))
		}
	}
	// The header durable, the batch after it not: a segment, kept.
	started := append(append([]byte(nil), hdr...), zeros[rf.hdrLen:]...)
	dir, s, err := openCrashed(t, rf.seg1, started)
	require.NoError(t, err)
	require.Equal(t, 2, s.Stats().Segments)
	last, _ := s.LastIndex()
	require.Equal(t, rf.atRotation, last)
	require.True(t, exists(filepath.Join(dir, segmentName(2))))
	require.NoError(t, s.Close())
	// All of it: every entry.
	_, s, err = openCrashed(t, rf.seg1, rf.seg2)
	require.NoError(t, err)
	last, _ = s.LastIndex()
	require.Equal(t, rf.last, last)
	require.NoError(t, s.Close())

	// Damage that no crash leaves: a header byte neither zero nor its
	// own, a non-zero byte past a missing header, and batches after a
	// header gone.
	var corrupt *CorruptionError
	for k := 0; k < rf.hdrLen; k += 7 {
		bad := append([]byte(nil), started...)
		bad[k] ^= 0x80
		_, _, err := openCrashed(t, rf.seg1, bad)
		require.True(t, errors.As(err, &corrupt), "header byte %d flipped: %v", k, err)
	}
	stray := append([]byte(nil), zeros...)
	stray[rf.hdrLen+100] = 1
	_, _, err = openCrashed(t, rf.seg1, stray)
	require.True(t, errors.As(err, &corrupt), "stray byte: %v", err)
	headless := append([]byte(nil), rf.seg2...)
	clear(headless[:rf.hdrLen])
	_, _, err = openCrashed(t, rf.seg1, headless)
	require.True(t, errors.As(err, &corrupt), "batches after a zeroed header: %v", err)
}

// TestWritesAfterADroppedSpare: after recovery dropped a spare, the
// sealed segment takes the writes, rotation starts segment 2 again, and
// every entry survives a reopen.
func TestWritesAfterADroppedSpare(t *testing.T) {
	rf := buildRotation(t)
	dir, s, err := openCrashed(t, rf.seg1, rf.seg2[:rf.hdrLen/2])
	require.NoError(t, err)
	next := appendN(t, s, rf.atRotation+1, 300, 512)
	require.Greater(t, s.Stats().Segments, 1)
	require.NoError(t, s.Close())
	s, err = Open(dir, &Options{SegmentSize: spareCrashSegSize})
	require.NoError(t, err)
	defer s.Close()
	es, err := s.Entries(1, next, 1<<30)
	require.NoError(t, err)
	require.Len(t, es, int(next-1))
}

// TestSparePreparedDuringRotation: a spare prepared while a rotation has
// started the next segment but not yet made it the active one is for the
// segment after, and leaves the started one alone (it carries the same
// name the spare would otherwise take).
func TestSparePreparedDuringRotation(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, &Options{SegmentSize: 64 << 10})
	s.noSpare = true // only the hook prepares one
	s.afterNewSegment = s.prepareSpare
	next := uint64(1)
	for s.Stats().Segments == 1 {
		next = appendN(t, s, next, 1, 512)
	}
	s.afterNewSegment = nil
	s.spare.mu.Lock()
	spareSeq := s.spare.seq
	s.spare.mu.Unlock()
	require.Equal(t, uint64(3), spareSeq)
	next = appendN(t, s, next, 10, 512)
	require.NoError(t, s.Close())
	s = openTest(t, dir, &Options{SegmentSize: 64 << 10})
	es, err := s.Entries(1, next, 1<<30)
	require.NoError(t, err)
	require.Len(t, es, int(next-1))
}
