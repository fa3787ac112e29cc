package wal

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	pb "github.com/raftkit/raft/raftpb"
)

func snapFiles(t *testing.T, dir string) []string {
	names, err := filepath.Glob(filepath.Join(dir, "*"+snapExt))
	require.NoError(t, err)
	return names
}

// TestSmallSnapshotKeptInItsRecord: CreateSnapshot with little data writes
// no snapshot file and syncs no directory: the data goes in the log record,
// made durable by the one group commit. The segment holding it outlives
// compactions and rotations while the snapshot is current, so it reopens
// whole; once a newer snapshot (in a file) replaces it, it can go.
func TestSmallSnapshotKeptInItsRecord(t *testing.T) {
	dir := t.TempDir()
	opts := &Options{SegmentSize: 8 << 10, NoPreallocate: true}
	s := openTest(t, dir, opts)
	next := appendN(t, s, 1, 40, 256)
	data := bytes.Repeat([]byte("state"), 100)
	cs := &pb.ConfState{Voters: []uint64{1, 2, 3}}
	dirs, fsyncs := dirSyncs.Load(), s.Stats().Fsyncs
	snap, err := s.CreateSnapshot(30, cs, data)
	require.NoError(t, err)
	require.Equal(t, dirs, dirSyncs.Load(), "an inline snapshot synced the directory")
	require.Equal(t, uint64(1), s.Stats().Fsyncs-fsyncs)
	require.Empty(t, snapFiles(t, dir))
	paths := s.SegmentPaths()
	holder := paths[len(paths)-1] // the active segment took the record

	require.NoError(t, s.Compact(30))
	next = appendN(t, s, next, 200, 256) // several rotations
	require.NoError(t, s.Compact(next-10))
	require.NoError(t, s.Sync())
	require.NoError(t, s.Close()) // finishes the removals
	require.True(t, exists(holder), "the segment holding the current snapshot was deleted")
	require.False(t, exists(paths[0]), "nothing was compacted away")
	// A file of the inline snapshot's name is a leftover: recovery drops it.
	stray := filepath.Join(dir, snapNameOf(snap.Metadata).String())
	require.NoError(t, os.WriteFile(stray, []byte("leftover"), 0o644))

	s = openTest(t, dir, opts)
	require.False(t, exists(stray), "recovery kept a stale file named after the inline snapshot")
	got, err := s.Snapshot()
	require.NoError(t, err)
	require.Equal(t, data, got.Data)
	require.True(t, sameMetadata(snap.Metadata, got.Metadata))
	firstLive := mustFirst(t, s)
	require.Equal(t, next-9, firstLive)

	// A newer snapshot too large to inline replaces it: its file is the
	// current one and the record's segment may be deleted.
	big := make([]byte, inlineSnapshotLimit+1)
	big[0] = 7
	_, err = s.CreateSnapshot(next-10, nil, big)
	require.NoError(t, err)
	require.Len(t, snapFiles(t, dir), 1)
	next = appendN(t, s, next, 100, 256)
	require.NoError(t, s.Compact(next-1))
	require.NoError(t, s.Close())
	s = openTest(t, dir, opts)
	got, err = s.Snapshot()
	require.NoError(t, err)
	require.Equal(t, big, got.Data)
	require.Len(t, s.SegmentPaths(), 1, "the inline snapshot's segment was kept after it stopped being current")
}

// TestTornInlineSnapshot: the batch of an inline snapshot cut short at any
// byte recovers without it (the previous snapshot, here none), whole it
// recovers with its data.
func TestTornInlineSnapshot(t *testing.T) {
	dir := t.TempDir()
	opts := &Options{NoPreallocate: true}
	s := openTest(t, dir, opts)
	appendN(t, s, 1, 10, 64)
	seg := s.SegmentPaths()[0]
	before := len(recordStarts(t, seg))
	data := []byte("the applied state")
	_, err := s.CreateSnapshot(8, &pb.ConfState{Voters: []uint64{1}}, data)
	require.NoError(t, err)
	require.NoError(t, s.Close())
	raw, err := os.ReadFile(seg)
	require.NoError(t, err)
	starts := recordStarts(t, seg)
	for cut := starts[before]; cut <= len(raw); cut++ {
		copyDir := t.TempDir()
		require.NoError(t, os.WriteFile(filepath.Join(copyDir, filepath.Base(seg)), raw[:cut], 0o644))
		r, err := Open(copyDir, opts)
		require.NoError(t, err, "cut at %d", cut)
		got, err := r.Snapshot()
		require.NoError(t, err)
		if cut == len(raw) {
			require.Equal(t, uint64(8), got.Metadata.Index)
			require.Equal(t, data, got.Data)
		} else {
			require.Equal(t, uint64(0), got.Metadata.Index, "cut at %d", cut)
		}
		require.NoError(t, r.Close())
	}
}
