package quorum

import (
	"fmt"
	"math"
	"reflect"
	"testing"
)

func majority(ids ...uint64) MajorityConfig {
	c := MajorityConfig{}
	for _, id := range ids {
		c[id] = struct{}{}
	}
	return c
}

func TestIndexString(t *testing.T) {
	for idx, want := range map[Index]string{
		0:                  "0",
		42:                 "42",
		math.MaxUint64 - 1: "18446744073709551614",
		math.MaxUint64:     "∞",
	} {
		if got := idx.String(); got != want {
			t.Errorf("Index(%d).String() = %q, want %q", uint64(idx), got, want)
		}
	}
}

func TestVoteResultString(t *testing.T) {
	for v, want := range map[VoteResult]string{
		VotePending: "VotePending",
		VoteLost:    "VoteLost",
		VoteWon:     "VoteWon",
		0:           "VoteResult(0)",
		4:           "VoteResult(4)",
		255:         "VoteResult(255)",
	} {
		if got := v.String(); got != want {
			t.Errorf("VoteResult(%d).String() = %q, want %q", uint8(v), got, want)
		}
		// %v goes through String as well; the datadriven output relies on it.
		if got := fmt.Sprintf("%v", v); got != want {
			t.Errorf("%%v of VoteResult(%d) = %q, want %q", uint8(v), got, want)
		}
	}
}

func TestMajorityConfigStringAndSlice(t *testing.T) {
	for _, tc := range []struct {
		cfg   MajorityConfig
		str   string
		slice []uint64
	}{
		{nil, "()", nil},
		{majority(), "()", nil},
		{majority(5), "(5)", []uint64{5}},
		{majority(30, 4, 100, 7), "(4 7 30 100)", []uint64{4, 7, 30, 100}},
		{majority(math.MaxUint64, 0), "(0 18446744073709551615)", []uint64{0, math.MaxUint64}},
	} {
		if got := tc.cfg.String(); got != tc.str {
			t.Errorf("String() = %q, want %q", got, tc.str)
		}
		if got := tc.cfg.Slice(); !reflect.DeepEqual(got, tc.slice) {
			t.Errorf("%s.Slice() = %#v, want %#v", tc.cfg, got, tc.slice)
		}
	}
}

func TestJointConfigStringAndIDs(t *testing.T) {
	for _, tc := range []struct {
		cfg JointConfig
		str string
		ids []uint64
	}{
		{JointConfig{}, "()", nil},
		{JointConfig{majority(1, 2)}, "(1 2)", []uint64{1, 2}},
		// An empty incoming half is still printed; an empty outgoing one is not.
		{JointConfig{nil, majority(3)}, "()&&(3)", []uint64{3}},
		{JointConfig{majority(3, 1, 2), majority(2, 4)}, "(1 2 3)&&(2 4)", []uint64{1, 2, 3, 4}},
	} {
		if got := tc.cfg.String(); got != tc.str {
			t.Errorf("String() = %q, want %q", got, tc.str)
		}
		ids := tc.cfg.IDs()
		if ids == nil {
			t.Errorf("%s.IDs() returned a nil map", tc.cfg)
		}
		if got := MajorityConfig(ids).Slice(); !reflect.DeepEqual(got, tc.ids) {
			t.Errorf("%s.IDs() = %v, want %v", tc.cfg, got, tc.ids)
		}
		// The result belongs to the caller: changing it leaves the config alone.
		ids[999] = struct{}{}
		if _, ok := tc.cfg[0][999]; ok {
			t.Errorf("%s.IDs() aliases the incoming half", tc.cfg)
		}
	}
}

// Describe shows what the indexer reports even for voters it does not
// know, the same as etcd/raft: an indexer that answers a placeholder index
// with found=false gets that index sorted and printed next to the "?".
func TestDescribeUnknownWithPlaceholder(t *testing.T) {
	got := majority(1, 2).Describe(placeholderIndexer{1: 7})
	want := "" +
		"      idx\n" +
		">       7    (id=1)\n" +
		"?      99    (id=2)\n"
	if got != want {
		t.Errorf("Describe:\n%s\nwant:\n%s", got, want)
	}
}

// placeholderIndexer reports 99 with found=false for voters it lacks.
type placeholderIndexer map[uint64]Index

func (p placeholderIndexer) AckedIndex(id uint64) (Index, bool) {
	if idx, ok := p[id]; ok {
		return idx, true
	}
	return 99, false
}

// Committing is on the leader's path for every append acknowledgement, so
// it must not allocate for ordinary cluster sizes.
func TestCommittedIndexDoesNotAllocate(t *testing.T) {
	for n := 1; n <= StackVoters; n++ {
		c, acked := syntheticCluster(n)
		if allocs := testing.AllocsPerRun(100, func() { _ = c.CommittedIndex(acked) }); allocs != 0 {
			t.Errorf("MajorityConfig.CommittedIndex with %d voters: %.1f allocs, want 0", n, allocs)
		}
		j := JointConfig{c, majority(1, 2, uint64(n)+1)}
		if allocs := testing.AllocsPerRun(100, func() { _ = j.CommittedIndex(acked) }); allocs != 0 {
			t.Errorf("JointConfig.CommittedIndex with %d voters: %.1f allocs, want 0", n, allocs)
		}
		votes := map[uint64]bool{1: true, 2: false}
		if allocs := testing.AllocsPerRun(100, func() { _ = j.VoteResult(votes) }); allocs != 0 {
			t.Errorf("JointConfig.VoteResult with %d voters: %.1f allocs, want 0", n, allocs)
		}
	}
}

// syntheticCluster returns n voters with distinct, unordered acked indexes,
// leaving the last voter unknown once there are enough voters to commit
// without it.
func syntheticCluster(n int) (MajorityConfig, ackMap) {
	c, acked := MajorityConfig{}, ackMap{}
	for i := 1; i <= n; i++ {
		c[uint64(i)] = struct{}{}
		if i < n || n < 3 {
			acked[uint64(i)] = Index((i * 7919) % 101)
		}
	}
	return c, acked
}

// ackMap is the plain-map AckedIndexer used by the tests; the tracker
// package provides its own indexer over its progress map.
type ackMap map[uint64]Index

// AckedIndex implements AckedIndexer.
func (m ackMap) AckedIndex(id uint64) (idx Index, found bool) {
	idx, found = m[id]
	return idx, found
}
