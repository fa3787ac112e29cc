package shared

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/raftkit/raft"
	pb "github.com/raftkit/raft/raftpb"
)

// TestGroupLifecycle: OpenGroup creates or finds, CreateGroups is all or
// nothing, and unknown or removed groups are refused with ErrNoGroup.
func TestGroupLifecycle(t *testing.T) {
	dir := t.TempDir()
	w := openTest(t, dir, &Options{NoSync: true})
	a, err := w.OpenGroup(5)
	require.NoError(t, err)
	require.NoError(t, a.Append(entsOf(5, 1, 1)))
	b, err := w.OpenGroup(5)
	require.NoError(t, err)
	last, _ := b.LastIndex()
	require.Equal(t, uint64(1), last, "OpenGroup of a live group finds it")

	require.ErrorIs(t, w.CreateGroups(6, 5), ErrGroupExists)
	require.ErrorIs(t, w.CreateGroups(7, 7), ErrGroupExists)
	require.Equal(t, []uint64{5}, w.GroupIDs(), "a refused CreateGroups creates nothing")
	_, err = w.Group(6)
	require.ErrorIs(t, err, ErrNoGroup)
	require.ErrorIs(t, w.RemoveGroup(6), ErrNoGroup)

	// LogBounds cannot fail: a view of a removed group, or of a closed
	// WAL, keeps answering the last bounds (raft's storage of a group being
	// torn down may still ask).
	c, err := w.CreateGroup(8)
	require.NoError(t, err)
	require.NoError(t, c.Append(entsOf(8, 1, 1, 2)))
	require.NoError(t, w.RemoveGroup(8))
	_, err = c.LastIndex()
	require.ErrorIs(t, err, ErrNoGroup)
	first, last, lastTerm := c.LogBounds()
	require.Equal(t, [3]uint64{1, 2, 2}, [3]uint64{first, last, lastTerm}, "a removed group's view")

	require.NoError(t, w.Close())
	_, err = a.LastIndex()
	require.ErrorIs(t, err, ErrClosed)
	first, last, lastTerm = a.LogBounds()
	require.Equal(t, [3]uint64{1, 1, 1}, [3]uint64{first, last, lastTerm}, "a closed WAL's view")
	require.ErrorIs(t, w.SaveBatch([]GroupUpdate{{GroupID: 5, Entries: entsOf(5, 2, 1)}}), ErrClosed)
	require.ErrorIs(t, w.Close(), ErrClosed)
}

// TestInvalidUpdateFailsTheWholeBatch: a batch with one bad update (an
// unknown group, a gap, a stale snapshot) writes nothing for any group.
func TestInvalidUpdateFailsTheWholeBatch(t *testing.T) {
	w := openTest(t, t.TempDir(), &Options{NoSync: true})
	mustCreate(t, w, 1, 2)
	require.NoError(t, mustGroup(t, w, 2).ApplySnapshot(pb.Snapshot{Metadata: pb.SnapshotMetadata{Index: 5, Term: 1}}))
	good := GroupUpdate{GroupID: 1, HardState: pb.HardState{Term: 1}, Entries: entsOf(1, 1, 1)}
	before := summarizeAll(t, w)
	batches := w.Stats().Batches
	// The good update installs a snapshot: its file must not outlive the
	// failed batch.
	good.Snapshot = pb.Snapshot{Metadata: pb.SnapshotMetadata{Index: 3, Term: 1}}
	for name, bad := range map[string]GroupUpdate{
		"unknown group":  {GroupID: 3, Entries: entsOf(3, 1, 1)},
		"gap":            {GroupID: 2, Entries: entsOf(2, 9, 1)},
		"not contiguous": {GroupID: 2, Entries: append(entsOf(2, 6, 1), entsOf(2, 8, 1)...)},
		"stale snapshot": {GroupID: 2, Snapshot: pb.Snapshot{Metadata: pb.SnapshotMetadata{Index: 4, Term: 1}}},
	} {
		err := w.SaveBatch([]GroupUpdate{good, bad})
		require.Error(t, err, name)
		if name == "stale snapshot" {
			require.ErrorIs(t, err, raft.ErrSnapOutOfDate)
		}
		require.Equal(t, before, summarizeAll(t, w), name)
		snaps, _ := filepath.Glob(filepath.Join(w.Dir(), snapDir, "*"))
		require.Len(t, snaps, 1, "%s: only group 2's snapshot file", name)
		require.Equal(t, batches, w.Stats().Batches, name)
	}
}

// TestSameGroupTwiceInABatch: later updates of a group in a batch build on
// earlier ones, and a commit-only update of an unchanged HardState writes
// nothing.
func TestSameGroupTwiceInABatch(t *testing.T) {
	w := openTest(t, t.TempDir(), &Options{NoSync: true})
	mustCreate(t, w, 1, 2)
	require.NoError(t, w.SaveBatch([]GroupUpdate{
		{GroupID: 1, HardState: pb.HardState{Term: 1}, Entries: entsOf(1, 1, 1, 1)},
		{GroupID: 2, Entries: entsOf(2, 1, 1)},
		{GroupID: 1, HardState: pb.HardState{Term: 2, Commit: 2}, Entries: entsOf(1, 3, 2)}, // after entry 2 of the first
	}))
	s := summarize(t, mustGroup(t, w, 1))
	require.Equal(t, uint64(3), s.Last)
	require.Equal(t, pb.HardState{Term: 2, Commit: 2}, s.HardState)
	batches := w.Stats().Batches
	require.NoError(t, w.SaveBatch([]GroupUpdate{{GroupID: 1, HardState: pb.HardState{Term: 2, Commit: 2}}}))
	require.Equal(t, batches, w.Stats().Batches, "nothing changed, nothing written")
}

// TestAppendUpdate: a MsgStorageAppend becomes the update that persists
// it; other messages are refused.
func TestAppendUpdate(t *testing.T) {
	w := openTest(t, t.TempDir(), &Options{NoSync: true})
	mustCreate(t, w, 9)
	snap := pb.Snapshot{Metadata: pb.SnapshotMetadata{Index: 3, Term: 2}}
	u, err := AppendUpdate(9, pb.Message{Type: pb.MsgStorageAppend, Term: 2, Vote: 1, Commit: 3,
		Snapshot: &snap, Entries: entsOf(9, 4, 2)})
	require.NoError(t, err)
	require.NoError(t, w.SaveBatch([]GroupUpdate{u}))
	s := summarize(t, mustGroup(t, w, 9))
	require.Equal(t, pb.HardState{Term: 2, Vote: 1, Commit: 3}, s.HardState)
	require.Equal(t, [2]uint64{4, 4}, [2]uint64{s.First, s.Last})
	_, err = AppendUpdate(9, pb.Message{Type: pb.MsgApp})
	require.Error(t, err)
}
