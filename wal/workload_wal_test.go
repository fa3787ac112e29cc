package wal

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestWorkloadMatchesModel runs the workload on the WAL and on
// MemoryStorage side by side, comparing after every action and after
// reopening every so often.
func TestWorkloadMatchesModel(t *testing.T) {
	for _, seed := range []int64{1, 2, 3} {
		dir := t.TempDir()
		opts := &Options{SegmentSize: 8 << 10, CacheSize: 2 << 10}
		w := openTest(t, dir, opts)
		m := modelAt(seed, 0, 0)
		const n = 300
		reused := uint64(0) // spares made of recycled segments
		for k := 1; k <= n; k++ {
			require.NoError(t, runWorkload(w, seed, k-1, k, false))
			require.NoError(t, runWorkload(m, seed, k-1, k, false))
			require.NoError(t, sameState(w, m), "seed %d after action %d", seed, k)
			if k%50 == 0 {
				reused += spareReused(w)
				require.NoError(t, w.Close())
				w = openTest(t, dir, opts)
				require.NoError(t, sameState(w, m), "seed %d after reopening at %d", seed, k)
			}
		}
		require.Greater(t, reused, uint64(0), "seed %d: the workload never rotated into a recycled segment", seed)
		st := w.Stats()
		require.LessOrEqual(t, st.CachedBytes, int64(2<<10))
		t.Logf("seed %d: %+v", seed, st)
	}
}
