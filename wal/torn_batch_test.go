package wal

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	pb "github.com/raftkit/raft/raftpb"
)

// TestTornSaveKeepsEntriesWithTheirHardState: a Save of entries and a
// HardState cut short at any byte, or with its tail zeroed, recovers either
// with both or with neither. Raft relies on it: entries kept without the
// commit index written with them can restart a node configurations behind
// (see raft's restart_commit.go).
func TestTornSaveKeepsEntriesWithTheirHardState(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, &Options{NoPreallocate: true})
	require.NoError(t, err)
	ents := func(lo, hi uint64) (out []pb.Entry) {
		for i := lo; i <= hi; i++ {
			out = append(out, pb.Entry{Index: i, Term: 1, Data: []byte("entry")})
		}
		return out
	}
	before := pb.HardState{Term: 1, Vote: 1, Commit: 1}
	require.NoError(t, s.Save(before, ents(1, 3), pb.Snapshot{}))
	segs := segmentsIn(t, dir)
	require.Len(t, segs, 1)
	batchStart := len(recordStarts(t, segs[0]))
	after := pb.HardState{Term: 1, Vote: 1, Commit: 3}
	require.NoError(t, s.Save(after, ents(4, 5), pb.Snapshot{}))
	require.NoError(t, s.Close())

	starts := recordStarts(t, segs[0])
	data, err := os.ReadFile(segs[0])
	require.NoError(t, err)
	_, _, n, err := decodeInSegment(t, segs[0], data, starts[len(starts)-1])
	require.NoError(t, err)
	lo, end := starts[batchStart], starts[len(starts)-1]+n

	for cut := lo; cut <= end; cut++ {
		for _, mode := range []string{"truncate", "zero"} {
			copyDir := t.TempDir()
			torn := append([]byte(nil), data...)
			if mode == "truncate" {
				torn = torn[:cut]
			} else {
				clear(torn[cut:end])
			}
			require.NoError(t, os.WriteFile(filepath.Join(copyDir, filepath.Base(segs[0])), torn, 0o644))
			r, err := Open(copyDir, &Options{NoPreallocate: true})
			require.NoError(t, err, "%s at %d", mode, cut)
			hs, _, err := r.InitialState()
			require.NoError(t, err)
			last, err := r.LastIndex()
			require.NoError(t, err)
			require.NoError(t, r.Close())
			whole := bytes.Equal(torn[:min(len(torn), end)], data[:end])
			switch {
			case last == 5 && hs == after:
				require.True(t, whole, "%s at %d: kept a batch that was cut", mode, cut)
			case last == 3 && hs == before:
				require.False(t, whole, "%s at %d: lost a complete batch", mode, cut)
			default:
				t.Fatalf("%s at %d: recovered last index %d with %+v: entries and HardState of one Save split", mode, cut, last, hs)
			}
		}
	}
}
