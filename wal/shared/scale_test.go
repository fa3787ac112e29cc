package shared

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	pb "github.com/raftkit/raft/raftpb"
)

// TestRecoverThousandGroups: 1000 groups written in batches across all of
// them (with compactions, snapshots, removals and several segments, so that
// recovery starts from a checkpoint of every group) recover exactly.
func TestRecoverThousandGroups(t *testing.T) {
	const groups = 1000
	dir := t.TempDir()
	opts := &Options{SegmentSize: 256 << 10, NoSync: true}
	w := openTest(t, dir, opts)
	ids := make([]uint64, groups)
	for k := range ids {
		ids[k] = uint64(k + 1)
	}
	require.NoError(t, w.CreateGroups(ids...))
	ups := make([]GroupUpdate, groups)
	for round := uint64(1); round <= 20; round++ {
		for k, id := range ids {
			ups[k] = GroupUpdate{GroupID: id, HardState: pb.HardState{Term: 1, Vote: 1, Commit: round - 1}, Entries: entsOf(id, round, 1)}
		}
		require.NoError(t, w.SaveBatch(ups))
		if round%5 == 0 {
			for _, id := range ids[:groups/2] {
				require.NoError(t, mustGroup(t, w, id).Compact(round-2))
			}
		}
	}
	for _, id := range ids[:10] {
		_, err := mustGroup(t, w, id).CreateSnapshot(19, &pb.ConfState{Voters: []uint64{1, 2, 3}}, []byte("snap"))
		require.NoError(t, err)
	}
	for _, id := range ids[groups-10:] {
		require.NoError(t, w.RemoveGroup(id))
	}
	require.Greater(t, len(w.SegmentPaths()), 1)
	want := summarizeAll(t, w)
	require.Len(t, want, groups-10)
	require.NoError(t, w.Close())

	start := time.Now()
	w = openTest(t, dir, opts)
	t.Logf("recovered %d groups from %d segments in %v", groups-10, len(w.SegmentPaths()), time.Since(start))
	require.Equal(t, want, summarizeAll(t, w))
}

// TestIdleGroupMemory reports the heap cost of an idle group (created,
// written to, compacted, nothing cached) and checks it stays small, so
// that 10,000 groups in one WAL cost little when idle.
func TestIdleGroupMemory(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("measures the heap")
	}
	const groups = 10000
	w := openTest(t, t.TempDir(), &Options{NoSync: true, GroupCacheSize: -1})
	ids := make([]uint64, groups)
	for k := range ids {
		ids[k] = uint64(k + 1)
	}
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	before := heap()
	require.NoError(t, w.CreateGroups(ids...))
	ups := make([]GroupUpdate, groups)
	for round := uint64(1); round <= 3; round++ {
		for k, id := range ids {
			ups[k] = GroupUpdate{GroupID: id, HardState: pb.HardState{Term: 1, Vote: 1, Commit: round}, Entries: entsOf(id, round, 1)}
		}
		require.NoError(t, w.SaveBatch(ups))
	}
	for _, id := range ids {
		require.NoError(t, mustGroup(t, w, id).Compact(3))
	}
	perGroup := float64(heap()-before) / groups
	t.Logf("idle group: %.0f bytes of heap each (%d groups)", perGroup, groups)
	require.Less(t, perGroup, 640.0, fmt.Sprintf("%.0f bytes per idle group", perGroup))
}

// TestCacheBudget: the entry caches of all groups together stay within
// CacheSize (and each within GroupCacheSize); evicted entries read back
// from disk.
func TestCacheBudget(t *testing.T) {
	opts := &Options{NoSync: true, GroupCacheSize: 4 << 10, CacheSize: 16 << 10}
	w := openTest(t, t.TempDir(), opts)
	const groups = 40
	for id := uint64(1); id <= groups; id++ {
		mustCreate(t, w, id)
	}
	data := make([]byte, 500)
	for i := uint64(1); i <= 20; i++ {
		var ups []GroupUpdate
		for id := uint64(1); id <= groups; id++ {
			ups = append(ups, GroupUpdate{GroupID: id, Entries: []pb.Entry{{Index: i, Term: 1, Data: data}}})
		}
		require.NoError(t, w.SaveBatch(ups))
		st := w.Stats()
		require.LessOrEqual(t, st.CachedBytes, opts.CacheSize)
		require.Positive(t, st.CachedBytes)
	}
	for id := uint64(1); id <= groups; id++ {
		s := summarize(t, mustGroup(t, w, id))
		require.Len(t, s.Entries, 20)
		w.mu.RLock()
		require.LessOrEqual(t, w.groups[id].cache.bytes, opts.GroupCacheSize)
		w.mu.RUnlock()
	}
}
