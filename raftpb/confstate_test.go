package raftpb

import (
	"math/rand"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestConfStateEquivalent(t *testing.T) {
	base := ConfState{
		Voters:         []uint64{1, 2, 3},
		Learners:       []uint64{4},
		VotersOutgoing: []uint64{1, 2, 5},
		LearnersNext:   []uint64{5},
		AutoLeave:      true,
	}
	for _, tc := range []struct {
		name  string
		other ConfState
		equiv bool
	}{
		{"identical", base, true},
		{"reordered", ConfState{Voters: []uint64{3, 1, 2}, Learners: []uint64{4}, VotersOutgoing: []uint64{5, 2, 1}, LearnersNext: []uint64{5}, AutoLeave: true}, true},
		{"auto leave differs", ConfState{Voters: base.Voters, Learners: base.Learners, VotersOutgoing: base.VotersOutgoing, LearnersNext: base.LearnersNext}, false},
		{"voter missing", ConfState{Voters: []uint64{1, 2}, Learners: base.Learners, VotersOutgoing: base.VotersOutgoing, LearnersNext: base.LearnersNext, AutoLeave: true}, false},
		{"learner became voter", ConfState{Voters: []uint64{1, 2, 3, 4}, VotersOutgoing: base.VotersOutgoing, LearnersNext: base.LearnersNext, AutoLeave: true}, false},
	} {
		err := base.Equivalent(tc.other)
		if tc.equiv {
			assert.NoError(t, err, tc.name)
		} else {
			assert.ErrorContains(t, err, "ConfStates not equivalent after sorting", tc.name)
		}
	}
}

func TestConfStateEquivalentNilAndEmpty(t *testing.T) {
	assert.NoError(t, ConfState{}.Equivalent(ConfState{Voters: []uint64{}, Learners: []uint64{}}))
}

func TestConfStateEquivalentDoesNotReorderInputs(t *testing.T) {
	rng := rand.New(rand.NewSource(7))
	for range 100 {
		voters := rng.Perm(6)
		a := ConfState{}
		for _, v := range voters {
			a.Voters = append(a.Voters, uint64(v))
		}
		before := append([]uint64(nil), a.Voters...)
		b := ConfState{Voters: append([]uint64(nil), a.Voters...)}
		rng.Shuffle(len(b.Voters), func(i, j int) { b.Voters[i], b.Voters[j] = b.Voters[j], b.Voters[i] })
		require.NoError(t, a.Equivalent(b))
		require.Equal(t, before, a.Voters, "Equivalent must not sort the caller's slices")
	}
}
