package raft

import (
	"math/rand"
	"testing"

	"github.com/stretchr/testify/require"

	pb "github.com/raftkit/raft/raftpb"
)

func TestSizeHelpers(t *testing.T) {
	ents := []pb.Entry{
		{Term: 1, Index: 1},
		{Term: 1, Index: 2, Data: []byte("abc")},
		{Term: 2, Index: 3, Data: make([]byte, 200)},
	}
	var enc entryEncodingSize
	for i := range ents {
		enc += entryEncodingSize(ents[i].Size())
	}
	require.Equal(t, enc, encodedSizeOf(ents))
	require.Zero(t, encodedSizeOf(nil))

	require.Zero(t, payloadBytes(ents[:1]), "an empty entry carries no payload")
	require.Equal(t, entryPayloadSize(3), payloadBytes(ents[1:2]))
	require.Equal(t, entryPayloadSize(203), payloadBytes(ents))
	require.Zero(t, payloadBytes(nil))
}

func TestLimitSize(t *testing.T) {
	ents := sized(1, 1, 4, 10)
	one := encodedSizeOf(ents[:1])
	for _, tc := range []struct {
		max  entryEncodingSize
		want int
	}{
		{max: 0, want: 1},
		{max: one - 1, want: 1},
		{max: one, want: 1},
		{max: 2*one - 1, want: 1},
		{max: 2 * one, want: 2},
		{max: 4 * one, want: 4},
		{max: noLimit, want: 4},
	} {
		require.Len(t, prefixWithin(ents, tc.max), tc.want, "max %d", tc.max)
	}
	require.Empty(t, prefixWithin(nil, noLimit))
	require.Empty(t, prefixWithin([]pb.Entry{}, 0))
}

// TestFittingPrefixProperty checks fittingPrefix against its definition on
// random inputs: the prefix fits, and one more entry would not.
func TestFittingPrefixProperty(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	for round := 0; round < 500; round++ {
		var ents []pb.Entry
		for i := 0; i < rng.Intn(8); i++ {
			ents = append(ents, pb.Entry{Index: uint64(i + 1), Data: make([]byte, rng.Intn(50))})
		}
		budget := entryEncodingSize(rng.Intn(200))
		n := fittingPrefix(ents, budget)
		require.LessOrEqual(t, encodedSizeOf(ents[:n]), budget)
		if n < len(ents) {
			require.Greater(t, encodedSizeOf(ents[:n+1]), budget)
		}
		lim := prefixWithin(ents, budget)
		require.Len(t, lim, min(len(ents), max(n, 1)))
	}
}

func TestExtend(t *testing.T) {
	a, b := termRun(1, 1, 2), termRun(1, 3, 4)

	// No room: a fresh array of exactly the needed size.
	full := a[:2:2]
	got := joinEntries(full, b)
	require.Equal(t, termRun(1, 1, 4), got)
	require.Equal(t, 4, cap(got))
	got[0].Term = 9
	require.Equal(t, uint64(1), a[0].Term, "the input array is not shared")

	// Room: appended in place.
	roomy := make([]pb.Entry, 2, 8)
	copy(roomy, a)
	got = joinEntries(roomy, b)
	require.Equal(t, termRun(1, 1, 4), got)
	require.Equal(t, &roomy[0], &got[0])

	require.Empty(t, joinEntries(nil, nil))
	require.Equal(t, b, joinEntries(nil, b))
}
