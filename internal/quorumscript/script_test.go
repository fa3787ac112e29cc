package quorumscript

import (
	"math"
	"testing"

	"github.com/cockroachdb/datadriven"

	"github.com/raftkit/raft/quorum"
)

// The quorum package's testdata covers the language in depth; these cases
// pin down the parts of the harness itself: value order across both halves,
// repeated IDs, the arity error, and the empty configurations.
func TestHandle(t *testing.T) {
	datadriven.RunTestFromString(t, `
# Values follow the first appearance of each voter across cfg and then cfgj,
# so voter 4 gets 9 and voter 2 gets 3.
committed cfg=(2,1) cfgj=(1,4) idx=(3,8,9)
----
       idx
x>       8    (id=1)
>        3    (id=2)
xx>      9    (id=4)
3

# A repeated ID is one voter and takes one value.
vote cfg=(1,1,2) votes=(y,n)
----
VoteLost

committed cfg=(1,2) idx=(5)
----
error: mismatched input (explicit or _) for voters map[1:{} 2:{}]: [5]

vote cfg=(1) votes=(y,n)
----
error: mismatched input (explicit or _) for voters map[1:{}]: [2 1]

committed cfgj=zero
----
<empty majority quorum>∞

vote
----
VoteWon
`, Handle)
}

func TestAckedIndexes(t *testing.T) {
	m := AckedIndexes{3: 7}
	if idx, ok := m.AckedIndex(3); !ok || idx != 7 {
		t.Errorf("AckedIndex(3) = %d, %v; want 7, true", idx, ok)
	}
	if idx, ok := m.AckedIndex(4); ok || idx != 0 {
		t.Errorf("AckedIndex(4) = %d, %v; want 0, false", idx, ok)
	}
}

// The references are checked against the quorum package at length by its
// property tests; these are the boundary cases worth stating on their own.
func TestReferences(t *testing.T) {
	none := quorum.JointConfig{}
	if got := ReferenceJointCommitted(none, AckedIndexes{}); got != math.MaxUint64 {
		t.Errorf("empty joint config commits %d, want MaxUint64", got)
	}
	if got := ReferenceJointVote(none, nil); got != quorum.VoteWon {
		t.Errorf("empty joint config votes %v, want VoteWon", got)
	}
	three := quorum.MajorityConfig{1: {}, 2: {}, 3: {}}
	if got := ReferenceMajorityCommitted(three, AckedIndexes{1: 4, 2: 6}); got != 4 {
		t.Errorf("committed with one voter unknown = %d, want 4", got)
	}
	for _, tc := range []struct {
		votes map[uint64]bool
		want  quorum.VoteResult
	}{
		{map[uint64]bool{1: true}, quorum.VotePending},
		{map[uint64]bool{1: true, 3: true}, quorum.VoteWon},
		{map[uint64]bool{1: false, 2: false}, quorum.VoteLost},
		// Ballots of non-voters do not count.
		{map[uint64]bool{1: true, 9: true}, quorum.VotePending},
	} {
		if got := ReferenceJointVote(quorum.JointConfig{three, nil}, tc.votes); got != tc.want {
			t.Errorf("votes %v: got %v, want %v", tc.votes, got, tc.want)
		}
	}
}
