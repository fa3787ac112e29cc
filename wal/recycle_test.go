package wal

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

// The tests' segments are smaller than spareClearSize; lowered for the
// whole test binary (the crash test's children included, so that their
// recoveries agree with their writes), recycled spares keep bytes of their
// earlier life past their cleared start, as they do at full size.
func init() { spareClearSize = 2 << 10 }

func poolLen(s *Storage) int {
	s.spare.mu.Lock()
	defer s.spare.mu.Unlock()
	return len(s.spare.pool)
}

func spareReused(s *Storage) uint64 {
	s.spare.mu.Lock()
	defer s.spare.mu.Unlock()
	return s.spare.reused
}

func inode(t *testing.T, path string) uint64 {
	fi, err := os.Stat(path)
	require.NoError(t, err)
	return fi.Sys().(*syscall.Stat_t).Ino
}

// appendUntilSegment appends entries of size bytes from next on until
// segment seq is the active one, and returns the next index and the first
// index written to segment seq.
func appendUntilSegment(t *testing.T, s *Storage, next uint64, seq uint64, size int) (uint64, uint64) {
	for activeSeq(s) < seq {
		next = appendN(t, s, next, 1, size)
	}
	return next, next - 1
}

func activeSeq(s *Storage) uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.active().seq
}

// TestCompactedSegmentBecomesTheNextSegment: a compacted segment's file is
// not deleted but kept, and the next spare is made of it: the same inode
// takes the next segment's name, with no file deleted; the log reads back
// whole across a reopen.
func TestCompactedSegmentBecomesTheNextSegment(t *testing.T) {
	dir := t.TempDir()
	opts := &Options{SegmentSize: 16 << 10}
	s := openTest(t, dir, opts)
	s.noSpare = true // spares only when the test asks
	next, first2 := appendUntilSegment(t, s, 1, 2, 512)
	next, _ = appendUntilSegment(t, s, next, 3, 512)
	ino1 := inode(t, filepath.Join(dir, segmentName(1)))
	require.NoError(t, s.Compact(first2))
	waitUntil(t, "segment 1 in the pool", func() bool { return poolLen(s) == 1 })
	require.False(t, exists(filepath.Join(dir, segmentName(1))))
	require.Equal(t, ino1, inode(t, filepath.Join(dir, recycledName(1))))

	s.prepareSpare()
	require.Equal(t, uint64(1), spareReused(s))
	require.Equal(t, 0, poolLen(s))
	require.Equal(t, ino1, inode(t, filepath.Join(dir, segmentName(4))))
	next, _ = appendUntilSegment(t, s, next, 4, 512)
	require.Equal(t, uint64(1), spareUsed(s))
	next = appendN(t, s, next, 5, 512)
	require.NoError(t, s.Close())

	s = openTest(t, dir, opts)
	last, err := s.LastIndex()
	require.NoError(t, err)
	require.Equal(t, next-1, last)
	es, err := s.Entries(first2+1, next, 1<<30)
	require.NoError(t, err)
	require.Len(t, es, int(next-first2-1))
}

// TestRecycleBound: past Options.RecycleSegments kept files, compacted
// segments are deleted; a negative bound keeps none. Close leaves the kept
// files, and Open takes them back up to its own bound, deleting the rest.
func TestRecycleBound(t *testing.T) {
	for _, c := range []struct {
		bound, kept int
	}{{1, 1}, {2, 2}, {-1, 0}} {
		dir := t.TempDir()
		s := openTest(t, dir, &Options{SegmentSize: 16 << 10, RecycleSegments: c.bound})
		s.noSpare = true
		next, _ := appendUntilSegment(t, s, 1, 5, 512)
		require.NoError(t, s.Compact(next-1))
		waitUntil(t, "segments 1-4 retired", func() bool {
			return !exists(filepath.Join(dir, segmentName(4)))
		})
		require.Equal(t, c.kept, poolLen(s), "bound %d", c.bound)
		tmps, err := filepath.Glob(filepath.Join(dir, "*"+tmpSuffix))
		require.NoError(t, err)
		require.Len(t, tmps, c.kept, "bound %d", c.bound)
		inodes := map[uint64]bool{}
		for _, p := range tmps {
			inodes[inode(t, p)] = true
		}
		require.NoError(t, s.Close())
		for _, reopen := range []struct{ bound, kept int }{{c.bound, c.kept}, {1, min(1, c.kept)}} {
			s = openTest(t, dir, &Options{SegmentSize: 16 << 10, RecycleSegments: reopen.bound})
			require.Equal(t, reopen.kept, poolLen(s), "bound %d, reopened with %d", c.bound, reopen.bound)
			tmps, err = filepath.Glob(filepath.Join(dir, "*"+tmpSuffix))
			require.NoError(t, err)
			require.Len(t, tmps, reopen.kept, "bound %d, reopened with %d", c.bound, reopen.bound)
			for _, p := range tmps {
				require.True(t, inodes[inode(t, p)], "a kept file was replaced")
			}
			require.NoError(t, s.Close())
		}
		if c.kept > 0 { // a file taken back becomes a spare
			s = openTest(t, dir, &Options{SegmentSize: 16 << 10})
			s.prepareSpare()
			require.Equal(t, uint64(1), spareReused(s))
			require.True(t, inodes[inode(t, filepath.Join(dir, segmentName(activeSeq(s)+1)))])
			require.NoError(t, s.Close())
		}
	}
}

// TestUnusedSpareKeptAtClose: Close puts a spare not used yet into the
// pool rather than deleting it, and the next Open makes it the spare again.
func TestUnusedSpareKeptAtClose(t *testing.T) {
	dir := t.TempDir()
	opts := &Options{SegmentSize: 16 << 10}
	s := openTest(t, dir, opts)
	s.noSpare = true
	s.prepareSpare()
	require.True(t, spareReady(s))
	ino := inode(t, filepath.Join(dir, segmentName(2)))
	require.NoError(t, s.Close())
	require.False(t, exists(filepath.Join(dir, segmentName(2))))
	require.Equal(t, ino, inode(t, filepath.Join(dir, recycledName(2))))

	s = openTest(t, dir, opts)
	require.Equal(t, 1, poolLen(s))
	s.prepareSpare()
	require.Equal(t, uint64(1), spareReused(s))
	require.Equal(t, ino, inode(t, filepath.Join(dir, segmentName(2))))
	require.NoError(t, s.Close())
}

// TestFormatVersion1Refused: a log of the format before recycling (record
// checksums from zero) is refused by name, not read.
func TestFormatVersion1Refused(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, nil)
	appendN(t, s, 1, 3, 64)
	require.NoError(t, s.Close())
	path := filepath.Join(dir, segmentName(1))
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	_, payload, n, err := decodeFrame(data)
	require.NoError(t, err)
	old := append([]byte(nil), payload...)
	binary.LittleEndian.PutUint16(old[len(segmentMagic):], 1)
	copy(data, appendFrame(nil, recSegmentHeader, old))
	require.Len(t, appendFrame(nil, recSegmentHeader, old), n)
	require.NoError(t, os.WriteFile(path, data, 0o644))
	_, err = Open(dir, nil)
	var ce *CorruptionError
	require.True(t, errors.As(err, &ce), "%v", err)
	require.True(t, strings.Contains(err.Error(), "unsupported format version 1"), "%v", err)
}
