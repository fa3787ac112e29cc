package commitrule

import (
	"math"
	"math/rand"
	"testing"
)

// naive is the rule as stated: the largest index that at least a majority
// of voters has reached.
func naive(acked []uint64, voters int) uint64 {
	if voters == 0 {
		return math.MaxUint64
	}
	var best uint64
	for _, idx := range acked {
		n := 0
		for _, other := range acked {
			if other >= idx {
				n++
			}
		}
		if n > voters/2 && idx > best {
			best = idx
		}
	}
	return best
}

func TestCommittedIndex(t *testing.T) {
	for _, tc := range []struct {
		acked  []uint64
		voters int
		want   uint64
	}{
		{nil, 0, math.MaxUint64},
		{nil, 1, 0},
		{[]uint64{7}, 1, 7},
		{[]uint64{7}, 3, 0},    // one of three reported
		{[]uint64{7, 5}, 3, 5}, // the silent third holds nothing
		{[]uint64{2, 9, 5}, 3, 5},
		{[]uint64{4, 4, 1, 8}, 4, 4},
		{[]uint64{4, 4, 1, 8}, 5, 4},
		{[]uint64{4, 1, 8}, 5, 1},
	} {
		if got := CommittedIndex(append([]uint64(nil), tc.acked...), tc.voters); got != tc.want {
			t.Errorf("CommittedIndex(%v, %d) = %d, want %d", tc.acked, tc.voters, got, tc.want)
		}
	}
}

// The sorting shortcut agrees with the rule as stated, on both sides of
// StackVoters.
func TestCommittedIndexMatchesNaive(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for i := 0; i < 5000; i++ {
		voters := rng.Intn(2*StackVoters + 2)
		acked := make([]uint64, rng.Intn(voters+1))
		for j := range acked {
			acked[j] = uint64(rng.Intn(30))
		}
		want := naive(acked, voters)
		if got := CommittedIndex(acked, voters); got != want {
			t.Fatalf("CommittedIndex(%v, %d) = %d, want %d", acked, voters, got, want)
		}
	}
}
