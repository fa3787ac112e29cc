package shared

import (
	"testing"

	"github.com/stretchr/testify/require"

	pb "github.com/raftkit/raft/raftpb"
)

func openTest(t testing.TB, dir string, opts *Options) *WAL {
	t.Helper()
	w, err := Open(dir, opts)
	require.NoError(t, err)
	t.Cleanup(func() { w.Close() })
	return w
}

func mustCreate(t testing.TB, w *WAL, ids ...uint64) {
	t.Helper()
	for _, id := range ids {
		_, err := w.CreateGroup(id)
		require.NoError(t, err)
	}
}

func mustGroup(t testing.TB, w *WAL, id uint64) *Group {
	t.Helper()
	g, err := w.Group(id)
	require.NoError(t, err)
	return g
}

// entsOf builds entries first.. with the given terms and a payload naming
// group, index and term.
func entsOf(group, first uint64, terms ...uint64) []pb.Entry {
	out := make([]pb.Entry, len(terms))
	for k, t := range terms {
		i := first + uint64(k)
		out[k] = pb.Entry{Index: i, Term: t, Data: []byte{byte(group), byte(i), byte(i >> 8), byte(t), 'x'}}
	}
	return out
}

// groupSummary is what recovery must preserve of a group, for comparisons.
type groupSummary struct {
	HardState   pb.HardState
	First, Last uint64
	Entries     []pb.Entry
}

func summarize(t testing.TB, g *Group) groupSummary {
	t.Helper()
	var s groupSummary
	var err error
	s.HardState, _, err = g.InitialState()
	require.NoError(t, err)
	s.First, err = g.FirstIndex()
	require.NoError(t, err)
	s.Last, err = g.LastIndex()
	require.NoError(t, err)
	if s.Last >= s.First {
		s.Entries, err = g.Entries(s.First, s.Last+1, 1<<40)
		require.NoError(t, err)
	}
	return s
}

// checkPins recomputes the pin counts from the groups: the cache of which
// segments hold live entries must match what it caches.
func checkPins(t testing.TB, w *WAL) {
	t.Helper()
	w.mu.RLock()
	defer w.mu.RUnlock()
	want := map[uint32]int{}
	for _, g := range w.groups {
		if s := g.firstSeg(); s != 0 {
			want[s]++
		}
	}
	require.Equal(t, want, w.pins, "pin counts")
	if len(w.segs) > 1 {
		require.NotZero(t, w.pins[uint32(w.segs[0].seq)], "the oldest segment is held by some group, or it would have been deleted")
	}
}
