// Package commitrule holds Raft's commit rule for one majority configuration,
// shared by quorum.MajorityConfig, which gathers the acknowledged indexes
// from a map of voters, and tracker.MemberOrder, which gathers them from
// its cached member order. The rule lives here, once, so that the two can
// never disagree about it.
package commitrule

import (
	"math"
	"slices"
)

// StackVoters is the largest configuration for which callers gather the
// acknowledged indexes in a stack buffer of this size, keeping a leader's
// per-acknowledgement commit check free of allocations. Real clusters rarely
// run more than seven voters.
const StackVoters = 16

// CommittedIndex returns the highest index that a majority of a
// configuration of voters voters has acknowledged, given the acknowledged
// indexes of the voters that reported one (at most voters of them, in any
// order; acked is sorted in place). Voters that did not report count as
// having acknowledged nothing, so the result is 0 until a majority has
// reported. An empty configuration returns the largest index: joined with
// another configuration it then defers to the other one.
func CommittedIndex[I ~uint64](acked []I, voters int) I {
	if voters == 0 {
		return math.MaxUint64
	}
	quorum := voters/2 + 1
	if len(acked) < quorum {
		return 0
	}
	if len(acked) <= StackVoters {
		insertionSort(acked)
	} else {
		slices.Sort(acked)
	}
	// With acked in ascending order, the quorum-th largest value is the
	// highest index that at least quorum voters have reached.
	return acked[len(acked)-quorum]
}

// insertionSort sorts s ascending in place. For the handful of voters in a
// typical configuration it is as fast as anything more elaborate and is
// plainly free of allocations.
func insertionSort[I ~uint64](s []I) {
	for i := 1; i < len(s); i++ {
		v := s[i]
		j := i
		for ; j > 0 && s[j-1] > v; j-- {
			s[j] = s[j-1]
		}
		s[j] = v
	}
}
