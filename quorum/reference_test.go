package quorum

import "math"

// This file holds deliberately simple reference versions of the quorum
// computations. They follow the definitions literally and make no attempt
// to be fast, so that the datadriven cross-checks and the property tests can
// compare the real code against them.

// ackedAtLeast counts the voters of c that are known to have acknowledged
// idx or more.
func ackedAtLeast(c MajorityConfig, l AckedIndexer, idx Index) int {
	n := 0
	for id := range c {
		if got, ok := l.AckedIndex(id); ok && got >= idx {
			n++
		}
	}
	return n
}

// refJointCommitted tries every index some voter has acknowledged and keeps
// the largest one held by a strict majority of each non-empty half. An empty
// half holds everything, and with both halves empty nothing bounds the
// result.
func refJointCommitted(cc JointConfig, l AckedIndexer) Index {
	if len(cc[0]) == 0 && len(cc[1]) == 0 {
		return math.MaxUint64
	}
	var best Index
	for id := range cc.IDs() {
		cand, ok := l.AckedIndex(id)
		if !ok || cand <= best {
			continue
		}
		held := true
		for _, half := range cc {
			if len(half) > 0 && 2*ackedAtLeast(half, l, cand) <= len(half) {
				held = false
			}
		}
		if held {
			best = cand
		}
	}
	return best
}

// refMajorityCommitted is refJointCommitted for a single majority.
func refMajorityCommitted(c MajorityConfig, l AckedIndexer) Index {
	return refJointCommitted(JointConfig{c, nil}, l)
}

// wonOutright reports whether, counting only the given ballots, every
// non-empty half has a strict majority of yes votes.
func wonOutright(cc JointConfig, ballots map[uint64]bool) bool {
	for _, half := range cc {
		yes := 0
		for id := range half {
			if ballots[id] {
				yes++
			}
		}
		if len(half) > 0 && 2*yes <= len(half) {
			return false
		}
	}
	return true
}

// refJointVote decides the election by completing the missing ballots both
// ways: if the election is won even when every silent voter says no it is
// won, if it is lost even when every silent voter says yes it is lost, and
// otherwise it is still open. Because more yes votes can never hurt, these
// two completions bound every other one.
func refJointVote(cc JointConfig, votes map[uint64]bool) VoteResult {
	pessimistic, optimistic := map[uint64]bool{}, map[uint64]bool{}
	for id := range cc.IDs() {
		v, ok := votes[id]
		pessimistic[id] = ok && v
		optimistic[id] = !ok || v
	}
	switch {
	case wonOutright(cc, pessimistic):
		return VoteWon
	case !wonOutright(cc, optimistic):
		return VoteLost
	}
	return VotePending
}
