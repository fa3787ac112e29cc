package wal

import (
	"os"
	"path/filepath"
	"sync"
	"testing"

	pb "github.com/raftkit/raft/raftpb"
	"github.com/stretchr/testify/require"
)

// TestRemovalRunsOffTheWritePath: CreateSnapshot and Compact return
// without waiting for the deletion of what they made obsolete, and writes
// go on while a deletion is in progress (deleting a preallocated 64 MiB
// segment took 20-40 ms here, which used to stall the Ready loop and the
// append thread). Close finishes the pending deletion, and the log reopens
// with the compacted state.
func TestRemovalRunsOffTheWritePath(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, &Options{SegmentSize: 4 << 10, NoPreallocate: true, NoSync: true})
	require.NoError(t, err)
	data := make([]byte, 512)
	next := uint64(1)
	appendN := func(n int) {
		for i := 0; i < n; i++ {
			require.NoError(t, s.Append([]pb.Entry{{Index: next, Term: 1, Data: data}}))
			next++
		}
	}
	appendN(64)
	before := len(s.SegmentPaths())
	require.Greater(t, before, 4)

	reached, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	s.beforeDelete = func() {
		once.Do(func() { close(reached) })
		<-release
	}
	_, err = s.CreateSnapshot(60, &pb.ConfState{Voters: []uint64{1}}, nil)
	require.NoError(t, err)
	require.NoError(t, s.Compact(60))
	<-reached // a removal is in progress, held before its deletions
	appendN(8)
	require.Equal(t, uint64(61), mustFirst(t, s))
	close(release)
	require.NoError(t, s.Close())

	s, err = Open(dir, &Options{SegmentSize: 4 << 10, NoPreallocate: true, NoSync: true})
	require.NoError(t, err)
	defer s.Close()
	require.Less(t, len(s.SegmentPaths()), before, "the compacted segments were deleted")
	require.Equal(t, uint64(61), mustFirst(t, s))
	last, err := s.LastIndex()
	require.NoError(t, err)
	require.Equal(t, uint64(72), last)
	snap, err := s.Snapshot()
	require.NoError(t, err)
	require.Equal(t, uint64(60), snap.Metadata.Index)
}

func mustFirst(t *testing.T, s *Storage) uint64 {
	t.Helper()
	first, err := s.FirstIndex()
	require.NoError(t, err)
	return first
}

// TestSegmentDeletedGradually: with Options.DeleteChunk, a compacted
// segment is renamed to a name recovery deletes, then shortened a chunk at
// a time before its unlink (one large deletion stalls the fsyncs running
// meanwhile on ext4), and the log
// reopens with its compacted state, also when a crash left such a file
// half shortened.
func TestSegmentDeletedGradually(t *testing.T) {
	dir := t.TempDir()
	opts := &Options{SegmentSize: 16 << 10, NoPreallocate: true, NoSync: true, DeleteChunk: 2 << 10}
	s, err := Open(dir, opts)
	require.NoError(t, err)
	var steps []int64
	var mu sync.Mutex
	s.onDeleteStep = func(size int64) {
		mu.Lock()
		steps = append(steps, size)
		mu.Unlock()
	}
	data := make([]byte, 512)
	for i := uint64(1); i <= 200; i++ {
		require.NoError(t, s.Append([]pb.Entry{{Index: i, Term: 1, Data: data}}))
	}
	before := len(s.SegmentPaths())
	require.Greater(t, before, 3)
	_, err = s.CreateSnapshot(190, &pb.ConfState{Voters: []uint64{1}}, nil)
	require.NoError(t, err)
	require.NoError(t, s.Compact(190))
	require.NoError(t, s.Close()) // finishes the pending removal

	mu.Lock()
	require.GreaterOrEqual(t, len(steps), 2*(before-2), "each deleted segment is shortened in several steps")
	for i := 1; i < len(steps); i++ {
		if steps[i] > steps[i-1] {
			require.Less(t, steps[i], int64(16<<10), "steps restart only for the next segment")
		}
	}
	mu.Unlock()

	// A crash part way through a deletion leaves a shortened .tmp file.
	left := filepath.Join(dir, segmentName(1)+tmpSuffix)
	require.NoError(t, os.WriteFile(left, make([]byte, 3<<10), 0o644))
	s, err = Open(dir, opts)
	require.NoError(t, err)
	defer s.Close()
	require.Less(t, len(s.SegmentPaths()), before)
	require.Equal(t, uint64(191), mustFirst(t, s))
	_, err = os.Stat(left)
	require.True(t, os.IsNotExist(err), "recovery deletes a half-deleted segment")
	ents, err := s.Entries(191, 201, 1<<30)
	require.NoError(t, err)
	require.Len(t, ents, 10)
}
