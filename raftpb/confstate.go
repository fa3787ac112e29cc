package raftpb

import (
	"fmt"
	"slices"
)

// Equivalent returns nil when cs and other describe the same configuration,
// that is, when they are equal once each ID list is sorted (the order of IDs
// carries no meaning, and nil and empty lists are the same). Otherwise the
// error shows both sorted forms and both inputs.
func (cs ConfState) Equivalent(other ConfState) error {
	a, b := cs.sorted(), other.sorted()
	if a.AutoLeave == b.AutoLeave &&
		slices.Equal(a.Voters, b.Voters) &&
		slices.Equal(a.Learners, b.Learners) &&
		slices.Equal(a.VotersOutgoing, b.VotersOutgoing) &&
		slices.Equal(a.LearnersNext, b.LearnersNext) {
		return nil
	}
	return fmt.Errorf("ConfStates not equivalent after sorting:\n%+#v\n%+#v\nInputs were:\n%+#v\n%+#v", a, b, cs, other)
}

// sorted returns a copy of cs whose ID lists are sorted copies, so that the
// caller's slices are never reordered. Empty lists become nil, which is also
// how they print in Equivalent's error.
func (cs ConfState) sorted() ConfState {
	sortedCopy := func(ids []uint64) []uint64 {
		if len(ids) == 0 {
			return nil
		}
		out := slices.Clone(ids)
		slices.Sort(out)
		return out
	}
	return ConfState{
		Voters:         sortedCopy(cs.Voters),
		Learners:       sortedCopy(cs.Learners),
		VotersOutgoing: sortedCopy(cs.VotersOutgoing),
		LearnersNext:   sortedCopy(cs.LearnersNext),
		AutoLeave:      cs.AutoLeave,
	}
}
