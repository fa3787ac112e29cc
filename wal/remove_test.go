package wal

import (
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
