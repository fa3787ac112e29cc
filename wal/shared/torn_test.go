package shared

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	pb "github.com/raftkit/raft/raftpb"
)

// TestTornBatchEveryGroupBeforeOrAfter: a batch across groups (appends,
// a conflicting-suffix overwrite, a snapshot install, new HardStates) cut
// short at every byte, or with its tail zeroed, recovers with every group
// as it was before the batch or every group as after it: no group keeps
// its entries without the HardState written with them, and no group sees
// the batch while another does not. Groups the batch does not touch are
// unchanged either way.
func TestTornBatchEveryGroupBeforeOrAfter(t *testing.T) {
	dir := t.TempDir()
	// NoSync: the point is what reaches the file, and a recovery per cut
	// need not fsync.
	opts := &Options{NoPreallocate: true, NoSync: true}
	w, err := Open(dir, opts)
	require.NoError(t, err)
	const groups = 5
	var ups []GroupUpdate
	for id := uint64(1); id <= groups; id++ {
		mustCreate(t, w, id)
		ups = append(ups, GroupUpdate{GroupID: id, HardState: pb.HardState{Term: 1, Vote: 1, Commit: 1}, Entries: entsOf(id, 1, 1, 1, 1)})
	}
	require.NoError(t, w.SaveBatch(ups))
	before := summarizeAll(t, w)
	seg := w.SegmentPaths()[0]
	lo := fileSize(t, seg)

	ups = []GroupUpdate{
		{GroupID: 1, HardState: pb.HardState{Term: 1, Vote: 1, Commit: 3}, Entries: entsOf(1, 4, 1, 1)},
		{GroupID: 2, HardState: pb.HardState{Term: 2, Vote: 2, Commit: 2}, Entries: entsOf(2, 3, 2, 2, 2)}, // overwrites 3
		{GroupID: 3, HardState: pb.HardState{Term: 5, Commit: 9}, Snapshot: pb.Snapshot{Data: []byte("s"), Metadata: pb.SnapshotMetadata{Index: 9, Term: 5, ConfState: pb.ConfState{Voters: []uint64{1}}}}},
		{GroupID: 4, HardState: pb.HardState{Term: 3, Vote: 4, Commit: 1}},
		// group 5 untouched
	}
	require.NoError(t, w.SaveBatch(ups))
	after := summarizeAll(t, w)
	require.NotEqual(t, before, after)
	require.NoError(t, w.Close())
	data, err := os.ReadFile(seg)
	require.NoError(t, err)
	end := int64(len(data))

	for cut := lo; cut <= end; cut++ {
		for _, mode := range []string{"truncate", "zero"} {
			torn := append([]byte(nil), data...)
			if mode == "truncate" {
				torn = torn[:cut]
			} else {
				clear(torn[cut:])
			}
			copyDir := copyWAL(t, dir, seg, torn)
			r, err := Open(copyDir, opts)
			require.NoError(t, err, "%s at %d", mode, cut)
			got := summarizeAll(t, r)
			require.NoError(t, r.Close())
			whole := bytes.Equal(torn, data)
			switch {
			case equalSummaries(got, after):
				require.True(t, whole, "%s at %d: kept a batch that was cut", mode, cut)
			case equalSummaries(got, before):
				require.False(t, whole, "%s at %d: lost a complete batch", mode, cut)
			default:
				t.Fatalf("%s at %d: groups recovered neither all before nor all after the batch:\n%+v", mode, cut, got)
			}
		}
	}
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	require.NoError(t, err)
	return fi.Size()
}

// copyWAL copies the WAL in dir to a new directory, with seg's contents
// replaced by data.
func copyWAL(t *testing.T, dir, seg string, data []byte) string {
	t.Helper()
	out := t.TempDir()
	require.NoError(t, filepath.Walk(dir, func(path string, fi os.FileInfo, err error) error {
		if err != nil || path == dir || filepath.Base(path) == lockFile {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		if fi.IsDir() {
			return os.MkdirAll(filepath.Join(out, rel), 0o755)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if path == seg {
			b = data
		}
		return os.WriteFile(filepath.Join(out, rel), b, 0o644)
	}))
	return out
}

type walSummary map[uint64]string

func summarizeAll(t *testing.T, w *WAL) walSummary {
	t.Helper()
	out := walSummary{}
	for _, id := range w.GroupIDs() {
		g := mustGroup(t, w, id)
		snap, err := g.Snapshot()
		require.NoError(t, err)
		out[id] = fmt.Sprintf("%+v snap=%d/%d", summarize(t, g), snap.Metadata.Index, snap.Metadata.Term)
	}
	return out
}

func equalSummaries(a, b walSummary) bool { return fmt.Sprint(a) == fmt.Sprint(b) }
