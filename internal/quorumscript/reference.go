package quorumscript

import (
	"math"

	"github.com/raftkit/raft/quorum"
)

// AckedIndexes is a plain map used as a quorum.AckedIndexer: a voter absent
// from the map is one nothing is known about.
type AckedIndexes map[uint64]quorum.Index

// AckedIndex implements quorum.AckedIndexer.
func (m AckedIndexes) AckedIndex(id uint64) (quorum.Index, bool) {
	idx, ok := m[id]
	return idx, ok
}

// The reference computations below follow the definitions literally and
// make no attempt to be fast. The scenario harness cross-checks the quorum
// package against them, and the quorum package's property tests compare
// the two on random inputs.

// ackedAtLeast counts the voters of c that are known to have acknowledged
// idx or more.
func ackedAtLeast(c quorum.MajorityConfig, l quorum.AckedIndexer, idx quorum.Index) int {
	n := 0
	for id := range c {
		if got, ok := l.AckedIndex(id); ok && got >= idx {
			n++
		}
	}
	return n
}

// ReferenceJointCommitted tries every index some voter has acknowledged and
// keeps the largest one held by a strict majority of each non-empty half.
// An empty half holds everything, and with both halves empty nothing bounds
// the result (math.MaxUint64).
func ReferenceJointCommitted(cc quorum.JointConfig, l quorum.AckedIndexer) quorum.Index {
	if len(cc[0]) == 0 && len(cc[1]) == 0 {
		return math.MaxUint64
	}
	var best quorum.Index
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

// ReferenceMajorityCommitted is ReferenceJointCommitted for a single
// majority.
func ReferenceMajorityCommitted(c quorum.MajorityConfig, l quorum.AckedIndexer) quorum.Index {
	return ReferenceJointCommitted(quorum.JointConfig{c, nil}, l)
}

// wonOutright reports whether, counting only the given ballots, every
// non-empty half has a strict majority of yes votes.
func wonOutright(cc quorum.JointConfig, ballots map[uint64]bool) bool {
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

// ReferenceJointVote decides the election by completing the missing
// ballots both ways: if the election is won even when every silent voter
// says no it is won, if it is lost even when every silent voter says yes it
// is lost, and otherwise it is still open. Because more yes votes can never
// hurt, these two completions bound every other one.
func ReferenceJointVote(cc quorum.JointConfig, votes map[uint64]bool) quorum.VoteResult {
	pessimistic, optimistic := map[uint64]bool{}, map[uint64]bool{}
	for id := range cc.IDs() {
		v, ok := votes[id]
		pessimistic[id] = ok && v
		optimistic[id] = !ok || v
	}
	switch {
	case wonOutright(cc, pessimistic):
		return quorum.VoteWon
	case !wonOutright(cc, optimistic):
		return quorum.VoteLost
	}
	return quorum.VotePending
}
