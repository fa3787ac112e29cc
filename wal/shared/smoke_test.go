package shared

import (
	"testing"

	"github.com/stretchr/testify/require"

	pb "github.com/raftkit/raft/raftpb"
)

func TestSmoke(t *testing.T) {
	dir := t.TempDir()
	w, err := Open(dir, nil)
	require.NoError(t, err)
	for id := uint64(1); id <= 3; id++ {
		_, err := w.CreateGroup(id)
		require.NoError(t, err)
	}
	var ups []GroupUpdate
	for id := uint64(1); id <= 3; id++ {
		ups = append(ups, GroupUpdate{GroupID: id, HardState: pb.HardState{Term: 1, Commit: 1}, Entries: []pb.Entry{{Index: 1, Term: 1, Data: []byte{byte(id)}}}})
	}
	require.NoError(t, w.SaveBatch(ups))
	require.NoError(t, w.Close())
	w, err = Open(dir, nil)
	require.NoError(t, err)
	defer w.Close()
	require.Equal(t, []uint64{1, 2, 3}, w.GroupIDs())
	g, err := w.Group(2)
	require.NoError(t, err)
	es, err := g.Entries(1, 2, 100)
	require.NoError(t, err)
	require.Equal(t, []byte{2}, es[0].Data)
	hs, _, err := g.InitialState()
	require.NoError(t, err)
	require.Equal(t, pb.HardState{Term: 1, Commit: 1}, hs)
}
