package shared

import (
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	pb "github.com/raftkit/raft/raftpb"
)

// busyWrite appends n entries of size bytes to group id, one batch each,
// compacting behind itself so that it holds no old segment.
func busyWrite(t *testing.T, w *WAL, id uint64, n, size int) {
	t.Helper()
	g := mustGroup(t, w, id)
	last, err := g.LastIndex()
	require.NoError(t, err)
	for k := 0; k < n; k++ {
		i := last + 1 + uint64(k)
		e := pb.Entry{Index: i, Term: 1, Data: make([]byte, size)}
		require.NoError(t, w.SaveBatch([]GroupUpdate{{GroupID: id, HardState: pb.HardState{Term: 1, Commit: i}, Entries: []pb.Entry{e}}}))
		if i > 2 {
			require.NoError(t, g.Compact(i-2))
		}
	}
}

func segmentFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*"+segmentExt))
	require.NoError(t, err)
	return m
}

// TestCompactionFreesSegments: a group that compacts behind its writes
// keeps the number of segments bounded, the deleted files are gone, and
// the WAL recovers from what is left.
func TestCompactionFreesSegments(t *testing.T) {
	dir := t.TempDir()
	opts := &Options{SegmentSize: 8 << 10, NoSync: true}
	w := openTest(t, dir, opts)
	mustCreate(t, w, 1, 2)
	busyWrite(t, w, 1, 400, 200) // ~90 KiB through 8 KiB segments
	files := segmentFiles(t, dir)
	require.LessOrEqual(t, len(files), 2, "compaction keeps at most the active segment and the one before")
	require.Equal(t, len(w.SegmentPaths()), len(files))
	want := summarizeAll(t, w)
	require.NoError(t, w.Close())
	w = openTest(t, dir, opts)
	require.Equal(t, want, summarizeAll(t, w))
}

// TestIdleGroupIsRelocated: a group that never compacts its few entries
// would hold the oldest segment forever; past MaxSegments its live log is
// rewritten forward, the old segments go, and the group reads the same,
// before and after a restart.
func TestIdleGroupIsRelocated(t *testing.T) {
	dir := t.TempDir()
	opts := &Options{SegmentSize: 8 << 10, MaxSegments: 3, NoSync: true, GroupCacheSize: -1}
	w := openTest(t, dir, opts)
	mustCreate(t, w, 1, 2)
	idle := mustGroup(t, w, 2)
	require.NoError(t, idle.Save(pb.HardState{Term: 1, Vote: 2, Commit: 2}, entsOf(2, 1, 1, 1, 1), pb.Snapshot{}))
	want := summarize(t, idle)
	busyWrite(t, w, 1, 600, 200)
	require.LessOrEqual(t, len(segmentFiles(t, dir)), opts.MaxSegments+1)
	require.Positive(t, w.Stats().Relocated)
	require.Equal(t, want, summarize(t, idle))
	require.NoError(t, w.Close())
	w = openTest(t, dir, opts)
	require.Equal(t, want, summarize(t, mustGroup(t, w, 2)))
}

// TestIdleGroupPinsWithoutRelocation is the control for the test above:
// with relocation out of reach (MaxSegments too high) the idle group holds
// every segment since its entries.
func TestIdleGroupPinsWithoutRelocation(t *testing.T) {
	dir := t.TempDir()
	opts := &Options{SegmentSize: 8 << 10, MaxSegments: 1000, NoSync: true}
	w := openTest(t, dir, opts)
	mustCreate(t, w, 1, 2)
	require.NoError(t, mustGroup(t, w, 2).Append(entsOf(2, 1, 1)))
	busyWrite(t, w, 1, 600, 200)
	require.Greater(t, len(segmentFiles(t, dir)), 10)
	require.Zero(t, w.Stats().Relocated)
}

// TestRemoveGroupFreesItsSpace: removing the group that holds the old
// segments deletes them and its snapshot file; its ID can be used again.
func TestRemoveGroupFreesItsSpace(t *testing.T) {
	dir := t.TempDir()
	opts := &Options{SegmentSize: 8 << 10, MaxSegments: 1000, NoSync: true}
	w := openTest(t, dir, opts)
	mustCreate(t, w, 1, 2)
	hog := mustGroup(t, w, 2)
	require.NoError(t, hog.Append(entsOf(2, 1, 1, 1)))
	_, err := hog.CreateSnapshot(2, &pb.ConfState{Voters: []uint64{2}}, []byte("state"))
	require.NoError(t, err)
	snaps, _ := filepath.Glob(filepath.Join(dir, snapDir, "*"+snapExt))
	require.Len(t, snaps, 1)
	busyWrite(t, w, 1, 300, 200)
	require.Greater(t, len(segmentFiles(t, dir)), 5)

	require.NoError(t, w.RemoveGroup(2))
	require.LessOrEqual(t, len(segmentFiles(t, dir)), 2)
	_, err = os.Stat(snaps[0])
	require.True(t, os.IsNotExist(err), "snapshot file of the removed group")
	_, err = hog.LastIndex()
	require.ErrorIs(t, err, ErrNoGroup)
	require.ErrorIs(t, hog.Append(entsOf(2, 4, 1)), ErrNoGroup)

	again, err := w.CreateGroup(2)
	require.NoError(t, err)
	require.Equal(t, groupSummary{First: 1, Last: 0}, summarize(t, again))
	require.NoError(t, w.Close())
	w = openTest(t, dir, opts)
	require.Equal(t, []uint64{1, 2}, w.GroupIDs())
	require.Equal(t, groupSummary{First: 1, Last: 0}, summarize(t, mustGroup(t, w, 2)))
}

// TestStaleSnapshotFilesGo: each group keeps one snapshot file, the latest.
func TestStaleSnapshotFilesGo(t *testing.T) {
	dir := t.TempDir()
	w := openTest(t, dir, &Options{NoSync: true})
	mustCreate(t, w, 7)
	g := mustGroup(t, w, 7)
	require.NoError(t, g.Append(entsOf(7, 1, 1, 1, 1, 1)))
	for i := uint64(1); i <= 3; i++ {
		_, err := g.CreateSnapshot(i, nil, []byte{byte(i)})
		require.NoError(t, err)
	}
	require.NoError(t, g.ApplySnapshot(pb.Snapshot{Data: []byte("x"), Metadata: pb.SnapshotMetadata{Index: 10, Term: 2}}))
	snaps, _ := filepath.Glob(filepath.Join(dir, snapDir, "*"+snapExt))
	require.Equal(t, []string{snapPath(dir, snapName{7, 2, 10})}, snaps)
	s, err := g.Snapshot()
	require.NoError(t, err)
	require.Equal(t, "x", string(s.Data))
}

// TestGroupCommit: SaveBatch calls that write while an fsync runs share the
// next one. The first fsync is held until all the others have written, so
// the count is exact: one for the first caller, one for all the others.
func TestGroupCommit(t *testing.T) {
	w := openTest(t, t.TempDir(), nil)
	const writers = 8
	for id := uint64(1); id <= writers+1; id++ {
		mustCreate(t, w, id)
	}
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	w.beforeSync = func() {
		once.Do(func() {
			close(entered)
			<-release
		})
	}
	before := w.Stats()
	var wg sync.WaitGroup
	save := func(id uint64) {
		defer wg.Done()
		require.NoError(t, w.SaveBatch([]GroupUpdate{{GroupID: id, Entries: entsOf(id, 1, 1)}}))
	}
	wg.Add(1)
	go save(1)
	<-entered
	wg.Add(writers)
	for id := uint64(2); id <= writers+1; id++ {
		go save(id)
	}
	for w.Stats().Batches < before.Batches+1+writers {
		waitForProgress()
	}
	close(release)
	wg.Wait()
	require.Equal(t, uint64(2), w.Stats().Fsyncs-before.Fsyncs, "nine synced batches, two fsyncs")
}

// TestOneFsyncPerBatch: a batch across many groups is one write and one
// fsync; a commit-only batch, or the creation of empty groups, is written
// without one.
func TestOneFsyncPerBatch(t *testing.T) {
	w := openTest(t, t.TempDir(), nil)
	var ups []GroupUpdate
	before := w.Stats()
	for id := uint64(1); id <= 100; id++ {
		mustCreate(t, w, id)
		ups = append(ups, GroupUpdate{GroupID: id, HardState: pb.HardState{Term: 1, Vote: id}, Entries: entsOf(id, 1, 1)})
	}
	require.Equal(t, before.Fsyncs, w.Stats().Fsyncs, "creating empty groups needs no fsync")
	before = w.Stats()
	require.NoError(t, w.SaveBatch(ups))
	st := w.Stats()
	require.Equal(t, uint64(1), st.Batches-before.Batches)
	require.Equal(t, uint64(1), st.Fsyncs-before.Fsyncs)
	for k := range ups {
		ups[k].Entries, ups[k].HardState.Commit = nil, 1
	}
	require.NoError(t, w.SaveBatch(ups))
	require.Equal(t, st.Fsyncs, w.Stats().Fsyncs, "commit-only batch")
	require.Equal(t, st.Batches+1, w.Stats().Batches)
}

// TestStaleNameOfALiveSnapshotIsKept: a group removed and created again can
// reach the snapshot name its removal made stale; deleting the stale names
// (which happens after the removal is durable, possibly after the new
// snapshot) must spare the live file.
func TestStaleNameOfALiveSnapshotIsKept(t *testing.T) {
	dir := t.TempDir()
	w := openTest(t, dir, &Options{NoSync: true})
	mustCreate(t, w, 1)
	snap := pb.Snapshot{Data: []byte("v2"), Metadata: pb.SnapshotMetadata{Index: 4, Term: 2}}
	require.NoError(t, mustGroup(t, w, 1).ApplySnapshot(snap))
	name := snapNameOf(1, snap.Metadata)
	w.wmu.Lock()
	w.removeSnapshotFiles([]snapName{name})
	w.wmu.Unlock()
	_, err := os.Stat(snapPath(dir, name))
	require.NoError(t, err)
	got, err := mustGroup(t, w, 1).Snapshot()
	require.NoError(t, err)
	require.Equal(t, "v2", string(got.Data))
}
