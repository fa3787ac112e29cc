package shared

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	pb "github.com/raftkit/raft/raftpb"
)

// corruptionFixture writes a WAL of three segments: group 1 keeps live
// entries in the first (so nothing is deleted), group 2 has a snapshot, and
// the last segment holds several batches.
func corruptionFixture(t *testing.T) (string, *Options) {
	dir := t.TempDir()
	opts := &Options{SegmentSize: 2 << 10, MaxSegments: 1000, NoPreallocate: true, NoSync: true}
	w, err := Open(dir, opts)
	require.NoError(t, err)
	mustCreate(t, w, 1, 2)
	require.NoError(t, mustGroup(t, w, 1).Append(entsOf(1, 1, 1, 1)))
	require.NoError(t, mustGroup(t, w, 2).ApplySnapshot(pb.Snapshot{Data: []byte("s"), Metadata: pb.SnapshotMetadata{Index: 5, Term: 1}}))
	i := uint64(6)
	for ; len(w.SegmentPaths()) < 3; i++ {
		require.NoError(t, mustGroup(t, w, 2).Append([]pb.Entry{{Index: i, Term: 1, Data: make([]byte, 100)}}))
	}
	for end := i + 5; i < end; i++ { // a few complete batches after the first in the last segment
		require.NoError(t, mustGroup(t, w, 2).Append([]pb.Entry{{Index: i, Term: 1, Data: make([]byte, 100)}}))
	}
	require.Len(t, w.SegmentPaths(), 3)
	require.NoError(t, w.Close())
	return dir, opts
}

// TestCorruptionIsReported: damage that a crash cannot explain fails Open
// with a *CorruptionError naming the file, instead of being cut away.
func TestCorruptionIsReported(t *testing.T) {
	cases := map[string]func(t *testing.T, dir string, segs []string){
		"flipped byte in a sealed segment": func(t *testing.T, dir string, segs []string) {
			flipByte(t, segs[0], fileSize(t, segs[0])-30)
		},
		"flipped byte before complete batches in the active segment": func(t *testing.T, dir string, segs []string) {
			flipByte(t, segs[2], fileSize(t, segs[2])/2)
		},
		"missing middle segment": func(t *testing.T, dir string, segs []string) {
			require.NoError(t, os.Remove(segs[1]))
		},
		"missing first segment with live entries": func(t *testing.T, dir string, segs []string) {
			require.NoError(t, os.Remove(segs[0]))
		},
		"missing snapshot file": func(t *testing.T, dir string, segs []string) {
			snaps, _ := filepath.Glob(filepath.Join(dir, snapDir, "*"+snapExt))
			require.Len(t, snaps, 1)
			require.NoError(t, os.Remove(snaps[0]))
		},
		"damaged segment header": func(t *testing.T, dir string, segs []string) {
			flipByte(t, segs[1], 20)
		},
	}
	for name, damage := range cases {
		t.Run(name, func(t *testing.T) {
			dir, opts := corruptionFixture(t)
			segs, _ := filepath.Glob(filepath.Join(dir, "*"+segmentExt))
			require.Len(t, segs, 3)
			damage(t, dir, segs)
			_, err := Open(dir, opts)
			require.ErrorIs(t, err, ErrCorrupt)
			var ce *CorruptionError
			require.ErrorAs(t, err, &ce)
			require.NotEmpty(t, ce.File)
			t.Log(err)
		})
	}
}

func flipByte(t *testing.T, path string, off int64) {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	b[off] ^= 0x40
	require.NoError(t, os.WriteFile(path, b, 0o644))
}
