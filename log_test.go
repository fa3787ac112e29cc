package raft

import (
	"errors"
	"fmt"
	"math/rand"
	"reflect"
	"testing"
	"testing/quick"

	"github.com/stretchr/testify/require"

	pb "github.com/raftkit/raft/raftpb"
)

// testLog builds a raftLog whose storage is compacted at (index, term) and
// holds stored, and whose unstable part holds unstable (which may start
// below the end of storage, replacing a suffix of it).
func testLog(t testing.TB, index, term uint64, stored, unstable []pb.Entry) *entryLog {
	t.Helper()
	l := openLog(storageAt(t, index, term, stored...), discardLogger, noLimit)
	if len(unstable) > 0 {
		l.write(unstable...)
	}
	return l
}

// sized builds entries [from, to] of the given term whose payloads are n
// bytes each.
func sized(term, from, to uint64, n int) []pb.Entry {
	var out []pb.Entry
	for i := from; i <= to; i++ {
		out = append(out, pb.Entry{Term: term, Index: i, Data: make([]byte, n)})
	}
	return out
}

func TestLogStartsAtSnapshot(t *testing.T) {
	l := testLog(t, 10, 2, termRun(2, 11, 13), nil)
	require.Equal(t, uint64(10), l.committed)
	require.Equal(t, uint64(10), l.applying)
	require.Equal(t, uint64(10), l.applied)
	require.Equal(t, uint64(11), l.first())
	require.Equal(t, uint64(13), l.last())
	require.Equal(t, entryID{term: 2, index: 13}, l.lastID())
	require.Equal(t, uint64(13), l.durable)
	require.False(t, l.hasUndurable())
	require.False(t, l.hasToApply(true))

	empty := openLog(NewMemoryStorage(), discardLogger, noLimit)
	require.Equal(t, entryID{}, empty.lastID())
	require.Equal(t, uint64(1), empty.first())
	require.Nil(t, empty.everything())
}

func TestLogMaybeAppend(t *testing.T) {
	// 1..3@1 durable, 4..5@2 unstable, committed 2.
	stored, unstable := termRun(1, 1, 3), termRun(2, 4, 5)
	for _, tc := range []struct {
		name          string
		prev          entryID
		ents          []pb.Entry
		commit        uint64
		wantOK        bool
		wantLast      uint64
		wantLog       []pb.Entry
		wantCommitted uint64
		panics        bool
	}{
		{
			name: "prev has another term", prev: entryID{term: 2, index: 3}, ents: termRun(2, 4, 4), commit: 4,
			wantLog: cat(stored, unstable), wantCommitted: 2,
		},
		{
			name: "prev past the end", prev: entryID{term: 2, index: 6}, ents: termRun(2, 7, 7), commit: 7,
			wantLog: cat(stored, unstable), wantCommitted: 2,
		},
		{
			name: "nothing new, commit advances", prev: entryID{term: 2, index: 5}, commit: 4,
			wantOK: true, wantLast: 5, wantLog: cat(stored, unstable), wantCommitted: 4,
		},
		{
			// The leader's commit index says nothing about entries after the
			// slice, which may still be stale here.
			name: "commit limited to the slice", prev: entryID{term: 1, index: 3}, commit: 5,
			wantOK: true, wantLast: 3, wantLog: cat(stored, unstable), wantCommitted: 3,
		},
		{
			name: "all entries present", prev: entryID{term: 1, index: 2}, ents: cat(termRun(1, 3, 3), termRun(2, 4, 5)), commit: 1,
			wantOK: true, wantLast: 5, wantLog: cat(stored, unstable), wantCommitted: 2,
		},
		{
			name: "new entries at the end", prev: entryID{term: 2, index: 5}, ents: termRun(2, 6, 7), commit: 7,
			wantOK: true, wantLast: 7, wantLog: cat(stored, unstable, termRun(2, 6, 7)), wantCommitted: 7,
		},
		{
			name: "overlap then new", prev: entryID{term: 2, index: 4}, ents: termRun(2, 5, 6), commit: 3,
			wantOK: true, wantLast: 6, wantLog: cat(stored, termRun(2, 4, 6)), wantCommitted: 3,
		},
		{
			// A shorter log from a newer leader wins over a longer stale one.
			name: "conflict in the unstable part", prev: entryID{term: 1, index: 3}, ents: termRun(3, 4, 4), commit: 4,
			wantOK: true, wantLast: 4, wantLog: cat(stored, termRun(3, 4, 4)), wantCommitted: 4,
		},
		{
			name: "conflict in the durable part", prev: entryID{term: 1, index: 2}, ents: termRun(3, 3, 4), commit: 0,
			wantOK: true, wantLast: 4, wantLog: cat(termRun(1, 1, 2), termRun(3, 3, 4)), wantCommitted: 2,
		},
		{
			name: "conflict with a committed entry", prev: entryID{term: 1, index: 1}, ents: termRun(3, 2, 2), panics: true,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := testLog(t, 0, 0, stored, unstable)
			l.raiseCommit(2)
			a := logSlice{term: 3, prev: tc.prev, entries: tc.ents}
			require.NoError(t, a.check())
			if tc.panics {
				require.Panics(t, func() { l.acceptAppend(a, tc.commit) })
				return
			}
			last, ok := l.acceptAppend(a, tc.commit)
			require.Equal(t, tc.wantOK, ok)
			require.Equal(t, tc.wantLast, last)
			require.Equal(t, tc.wantLog, l.everything())
			require.Equal(t, tc.wantCommitted, l.committed)
		})
	}
}

func TestLogFindConflict(t *testing.T) {
	l := testLog(t, 0, 0, termRun(1, 1, 3), termRun(2, 4, 5))
	for _, tc := range []struct {
		ents []pb.Entry
		want uint64
	}{
		{ents: nil, want: 0},
		{ents: termRun(1, 2, 3), want: 0},
		{ents: cat(termRun(1, 3, 3), termRun(2, 4, 5)), want: 0},
		{ents: cat(termRun(2, 5, 5), termRun(2, 6, 7)), want: 6}, // first new entry
		{ents: termRun(1, 6, 6), want: 6},
		{ents: cat(termRun(1, 3, 3), termRun(3, 4, 4)), want: 4}, // conflict
		{ents: termRun(4, 1, 2), want: 1},
	} {
		require.Equal(t, tc.want, l.firstMismatch(tc.ents), "%v", tc.ents)
	}
}

func TestLogFindConflictByTerm(t *testing.T) {
	// Compacted at 5@2; 6..8@2 and 9..10@4 durable; 11..12@5 unstable.
	l := testLog(t, 5, 2, cat(termRun(2, 6, 8), termRun(4, 9, 10)), termRun(5, 11, 12))
	for _, tc := range []struct {
		index, term         uint64
		wantIndex, wantTerm uint64
	}{
		{index: 12, term: 5, wantIndex: 12, wantTerm: 5},
		{index: 12, term: 7, wantIndex: 12, wantTerm: 5},
		{index: 12, term: 4, wantIndex: 10, wantTerm: 4},
		{index: 10, term: 3, wantIndex: 8, wantTerm: 2},
		{index: 12, term: 2, wantIndex: 8, wantTerm: 2},
		{index: 8, term: 1, wantIndex: 4, wantTerm: 0}, // walks into the compacted prefix
		{index: 3, term: 9, wantIndex: 3, wantTerm: 0},
		{index: 30, term: 9, wantIndex: 30, wantTerm: 0}, // past the end: unknown
		{index: 0, term: 0, wantIndex: 0, wantTerm: 0},
	} {
		t.Run(fmt.Sprintf("%d@%d", tc.index, tc.term), func(t *testing.T) {
			index, term := l.backtrack(tc.index, tc.term)
			require.Equal(t, tc.wantIndex, index)
			require.Equal(t, tc.wantTerm, term)
		})
	}
}

func TestLogTermAcrossCompactionAndSnapshot(t *testing.T) {
	l := testLog(t, 5, 2, termRun(2, 6, 8), termRun(3, 9, 9))
	type want struct {
		term uint64
		err  error
	}
	check := func(cases map[uint64]want) {
		t.Helper()
		for i, w := range cases {
			term, err := l.termAt(i)
			require.ErrorIs(t, err, w.err, "index %d", i)
			require.Equal(t, w.term, term, "index %d", i)
			require.Equal(t, w.term, l.termOrZero(i))
		}
	}
	check(map[uint64]want{
		3: {err: ErrCompacted}, 4: {err: ErrCompacted},
		5: {term: 2}, 6: {term: 2}, 8: {term: 2}, 9: {term: 3},
		10: {err: ErrUnavailable},
	})

	// Storage compacts further underneath the log.
	require.NoError(t, l.storage.(*MemoryStorage).Compact(7))
	check(map[uint64]want{6: {err: ErrCompacted}, 7: {term: 2}, 9: {term: 3}})

	// A snapshot from the leader supersedes all of it until it is durable.
	l.installSnapshot(*snapAt(20, 6))
	check(map[uint64]want{
		8: {err: ErrCompacted}, 19: {err: ErrCompacted},
		20: {term: 6}, 21: {err: ErrUnavailable},
	})
	require.Equal(t, uint64(21), l.first())
	require.Equal(t, entryID{term: 6, index: 20}, l.lastID())
	snap, err := l.latestSnapshot()
	require.NoError(t, err)
	require.Equal(t, *snapAt(20, 6), snap)
}

func TestLogIsUpToDate(t *testing.T) {
	l := testLog(t, 0, 0, termRun(1, 1, 4), termRun(3, 5, 7))
	for _, tc := range []struct {
		their entryID
		want  bool
	}{
		{their: entryID{term: 3, index: 7}, want: true},
		{their: entryID{term: 3, index: 8}, want: true},
		{their: entryID{term: 3, index: 6}, want: false},
		{their: entryID{term: 4, index: 1}, want: true},
		{their: entryID{term: 2, index: 100}, want: false},
		{their: entryID{}, want: false},
	} {
		require.Equal(t, tc.want, l.upToDate(tc.their), "%+v", tc.their)
	}
}

func TestLogCommit(t *testing.T) {
	l := testLog(t, 0, 0, termRun(1, 1, 3), termRun(2, 4, 5))
	l.raiseCommit(3)
	require.Equal(t, uint64(3), l.committed)
	l.raiseCommit(1)
	require.Equal(t, uint64(3), l.committed, "the commit index never goes back")
	require.Panics(t, func() { l.raiseCommit(6) })

	require.False(t, l.commitOwn(entryID{term: 1, index: 4}), "term mismatch")
	require.False(t, l.commitOwn(entryID{term: 1, index: 2}), "already committed")
	require.False(t, l.commitOwn(entryID{term: 0, index: 4}), "term 0 never commits")
	require.False(t, l.commitOwn(entryID{term: 2, index: 6}), "past the end")
	require.True(t, l.commitOwn(entryID{term: 2, index: 5}))
	require.Equal(t, uint64(5), l.committed)
}

func TestLogAppliedBounds(t *testing.T) {
	l := testLog(t, 0, 0, termRun(1, 1, 5), nil)
	l.raiseCommit(4)
	require.Panics(t, func() { l.markApplying(5, 0, false) }, "applying past commit")
	l.markApplying(3, 0, false)
	require.Panics(t, func() { l.markApplied(5, 0) }, "applied past commit")
	l.markApplied(2, 0)
	require.Equal(t, uint64(3), l.applying, "applying does not move back")
	require.Panics(t, func() { l.markApplied(1, 0) }, "applied moving back")
	l.markApplied(4, 0)
	require.Equal(t, uint64(4), l.applied)
	require.Equal(t, uint64(4), l.applying, "applying catches up with applied")
}

func TestLogNextCommittedEnts(t *testing.T) {
	// 1..5 durable, 6..8 unstable; application has taken up to 2.
	for _, tc := range []struct {
		name          string
		committed     uint64
		allowUnstable bool
		snapshot      bool
		want          []pb.Entry
	}{
		{name: "durable, committed", committed: 4, want: termRun(1, 3, 4)},
		{name: "durable, committed, allow", committed: 4, allowUnstable: true, want: termRun(1, 3, 4)},
		{name: "commit past durable", committed: 7, want: termRun(1, 3, 5)},
		{name: "commit past durable, allow", committed: 7, allowUnstable: true, want: cat(termRun(1, 3, 5), termRun(1, 6, 7))},
		{name: "nothing new", committed: 2, allowUnstable: true},
		{name: "snapshot pending", committed: 7, allowUnstable: true, snapshot: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := testLog(t, 0, 0, termRun(1, 1, 5), termRun(1, 6, 8))
			l.raiseCommit(tc.committed)
			l.markApplying(2, 0, tc.allowUnstable)
			l.markApplied(2, 0)
			if tc.snapshot {
				// A snapshot pending behind the committed entries (the log is
				// not reset, as restore would do) holds application back.
				l.pending = snapAt(0, 0)
			}
			got := l.toApply(tc.allowUnstable)
			require.Equal(t, tc.want, got)
			require.Equal(t, len(tc.want) > 0, l.hasToApply(tc.allowUnstable))
		})
	}
}

// TestRaftLogCommittedEntsPaging walks the size-bounded hand-out of
// committed entries (Config.MaxCommittedSizePerReady) through accept/apply
// cycles.
func TestLogCommittedEntsPaging(t *testing.T) {
	ents := sized(1, 1, 9, 100)
	one := encodedSizeOf(ents[:1])
	require.Equal(t, one*9, encodedSizeOf(ents), "equal-size entries")

	for _, tc := range pagingCases(one) {
		t.Run(tc.name, func(t *testing.T) {
			l := openLog(storageAt(t, 0, 0, ents...), discardLogger, tc.max)
			l.raiseCommit(9)
			for n, s := range tc.steps {
				runPagingStep(t, l, n, s)
			}
		})
	}
}

// pagingStep is one step of a paging scenario over a log of nine committed
// entries. take: hand out toApply and accept them; apply: report applied up
// to this index with this size.
type pagingStep struct {
	take       bool
	wantTaken  uint64 // index of the last entry handed out, 0 for none
	applyTo    uint64
	applySize  entryEncodingSize
	wantPaused bool
}

// pagingCase is a budget for entries being applied and the steps run under
// it.
type pagingCase struct {
	name  string
	max   entryEncodingSize
	steps []pagingStep
}

// pagingCases are the paging scenarios for entries of encoded size one each.
func pagingCases(one entryEncodingSize) []pagingCase {
	return []pagingCase{
		{
			name: "budget of two and a half entries", max: one * 5 / 2,
			steps: []pagingStep{
				// Two fit; the third would not, so application pauses.
				{take: true, wantTaken: 2, wantPaused: true},
				{take: true, wantTaken: 0, wantPaused: true},
				{applyTo: 2, applySize: 2 * one},
				{take: true, wantTaken: 4, wantPaused: true},
				// Applying one frees room for one more, not two.
				{applyTo: 3, applySize: one},
				{take: true, wantTaken: 5, wantPaused: true},
				{applyTo: 5, applySize: 2 * one},
				{take: true, wantTaken: 7, wantPaused: true},
				{applyTo: 7, applySize: 2 * one},
				{take: true, wantTaken: 9, wantPaused: false},
				{take: true, wantTaken: 0, wantPaused: false},
			},
		},
		{
			name: "budget exactly two entries", max: 2 * one,
			steps: []pagingStep{
				{take: true, wantTaken: 2, wantPaused: true},
				{applyTo: 1, applySize: one},
				{take: true, wantTaken: 3, wantPaused: true},
				{applyTo: 3, applySize: 2 * one},
				{take: true, wantTaken: 5, wantPaused: true},
			},
		},
		{
			// One entry larger than the whole budget still goes, alone.
			name: "budget below one entry", max: one / 2,
			steps: []pagingStep{
				{take: true, wantTaken: 1, wantPaused: true},
				{take: true, wantTaken: 0, wantPaused: true},
				{applyTo: 1, applySize: one},
				{take: true, wantTaken: 2, wantPaused: true},
			},
		},
		{
			name: "zero budget lets one entry through at a time", max: 0,
			steps: []pagingStep{
				{take: true, wantTaken: 1, wantPaused: true},
				{applyTo: 1, applySize: one},
				{take: true, wantTaken: 2, wantPaused: true},
			},
		},
		{
			// The application may report more than it was handed (e.g. after
			// a restart); the outstanding size saturates at zero.
			name: "over-reported size", max: 2 * one,
			steps: []pagingStep{
				{take: true, wantTaken: 2, wantPaused: true},
				{applyTo: 2, applySize: 10 * one},
				{take: true, wantTaken: 4, wantPaused: true},
			},
		},
	}
}

// runPagingStep runs step n on l (whose commit index is 9) and checks what
// it hands out and whether application is paused afterwards.
func runPagingStep(t *testing.T, l *entryLog, n int, s pagingStep) {
	t.Helper()
	if !s.take {
		l.markApplied(s.applyTo, s.applySize)
		return
	}
	got := l.toApply(false)
	require.Equal(t, s.wantTaken > 0, len(got) > 0, "step %d", n)
	if len(got) > 0 {
		require.Equal(t, s.wantTaken, got[len(got)-1].Index, "step %d", n)
		require.Equal(t, l.applying+1, got[0].Index, "step %d", n)
		l.markApplying(s.wantTaken, encodedSizeOf(got), false)
	}
	require.Equal(t, s.wantPaused, l.pacing.paused, "step %d", n)
	require.Equal(t, !s.wantPaused && l.applying < 9, l.hasToApply(false), "step %d", n)
}

func TestLogRead(t *testing.T) {
	// Compacted at 2@1; 3..7@1 durable; 8..10@2 unstable. Equal sizes.
	stored, unstable := sized(1, 3, 7, 10), sized(2, 8, 10, 10)
	all := cat(stored, unstable)
	one := encodedSizeOf(all[:1])
	for _, tc := range []struct {
		name     string
		lo, hi   uint64
		max      entryEncodingSize
		wantTo   uint64 // the result is all[lo:wantTo)
		err      error
		panics   bool
		fromZero bool
	}{
		{name: "compacted", lo: 2, hi: 5, max: noLimit, err: ErrCompacted},
		{name: "lo > hi", lo: 6, hi: 5, max: noLimit, panics: true},
		{name: "past the end", lo: 3, hi: 12, max: noLimit, panics: true},
		{name: "empty", lo: 5, hi: 5, max: noLimit, wantTo: 5},
		{name: "empty at the end", lo: 11, hi: 11, max: noLimit, wantTo: 11},
		{name: "durable only", lo: 3, hi: 6, max: noLimit, wantTo: 6},
		{name: "up to the boundary", lo: 4, hi: 8, max: noLimit, wantTo: 8},
		{name: "unstable only", lo: 8, hi: 11, max: noLimit, wantTo: 11},
		{name: "across", lo: 3, hi: 11, max: noLimit, wantTo: 11},
		{name: "across, stops in storage", lo: 5, hi: 10, max: 2 * one, wantTo: 7},
		{name: "across, stops at the boundary", lo: 5, hi: 10, max: 3*one + one/2, wantTo: 8},
		{name: "across, stops in unstable", lo: 5, hi: 11, max: 5 * one, wantTo: 10},
		{name: "across, zero budget", lo: 7, hi: 10, max: 0, wantTo: 8},
		{name: "unstable, zero budget", lo: 9, hi: 11, max: 0, wantTo: 10},
		{name: "unstable, limited", lo: 8, hi: 11, max: 2*one + 1, wantTo: 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := testLog(t, 2, 1, stored, unstable)
			if tc.panics {
				require.Panics(t, func() { _, _ = l.read(tc.lo, tc.hi, tc.max) })
				return
			}
			got, err := l.read(tc.lo, tc.hi, tc.max)
			require.ErrorIs(t, err, tc.err)
			if tc.err != nil {
				return
			}
			want := all[tc.lo-3 : tc.wantTo-3]
			require.Equal(t, len(want), len(got))
			if len(want) > 0 {
				require.Equal(t, want, got)
			}
		})
	}
}

func TestLogReadUnstableOverridesStorage(t *testing.T) {
	// Storage still has 6..8@1, which the unstable 6..7@2 replaces.
	l := testLog(t, 0, 0, termRun(1, 1, 8), termRun(2, 6, 7))
	require.Equal(t, uint64(7), l.last())
	got, err := l.read(4, 8, noLimit)
	require.NoError(t, err)
	require.Equal(t, cat(termRun(1, 4, 5), termRun(2, 6, 7)), got)
	term, err := l.termAt(6)
	require.NoError(t, err)
	require.Equal(t, uint64(2), term)
	require.Panics(t, func() { _, _ = l.read(4, 9, noLimit) }, "8 is no longer in the log")
}

// TestRaftLogSliceNoAliasing appends to every kind of result slice and
// checks that the log is unaffected.
func TestLogReadNoAliasing(t *testing.T) {
	l := testLog(t, 0, 0, termRun(1, 1, 4), termRun(1, 5, 8))
	want := deepCopy(l.everything())
	for _, r := range [][2]uint64{{1, 3}, {5, 7}, {2, 7}, {1, 9}} {
		got, err := l.read(r[0], r[1], noLimit)
		require.NoError(t, err)
		_ = append(got, pb.Entry{Index: r[1], Term: 99})
	}
	require.Equal(t, want, l.everything())
	got, _ := l.read(5, 7, noLimit)
	held := deepCopy(got)
	l.write(termRun(2, 6, 9)...)
	require.Equal(t, held, got, "entries handed out survive truncation")
}

// sliceScenario is a random log split between storage and unstable, and a
// random slice request against it, for testing/quick.
type sliceScenario struct {
	compacted  uint64 // storage compaction point (term 1)
	storedTo   uint64 // storage holds (compacted, storedTo]
	unstableAt uint64 // unstable entries start here, <= storedTo+1
	last       uint64 // unstable entries end here (>= unstableAt-1)
	sizes      []int  // payload size per index, from compacted+1
	lo, hi     uint64
	max        entryEncodingSize
}

// Generate implements quick.Generator.
func (sliceScenario) Generate(rng *rand.Rand, _ int) reflect.Value {
	var s sliceScenario
	s.compacted = uint64(rng.Intn(5))
	s.storedTo = s.compacted + uint64(rng.Intn(8))
	s.unstableAt = s.compacted + 1 + uint64(rng.Intn(int(s.storedTo-s.compacted)+1))
	s.last = s.unstableAt - 1 + uint64(rng.Intn(8))
	end := max(s.storedTo, s.last)
	for i := s.compacted + 1; i <= end; i++ {
		s.sizes = append(s.sizes, rng.Intn(40))
	}
	// lo may be below the first index, to exercise ErrCompacted.
	s.lo = uint64(rng.Intn(int(s.last) + 2))
	if s.lo > s.last+1 {
		s.lo = s.last + 1
	}
	s.hi = s.lo + uint64(rng.Intn(int(s.last+1-s.lo)+1))
	switch rng.Intn(4) {
	case 0:
		s.max = noLimit
	case 1:
		s.max = 0
	default:
		s.max = entryEncodingSize(rng.Intn(300))
	}
	return reflect.ValueOf(s)
}

func (s sliceScenario) entry(term, index uint64) pb.Entry {
	return pb.Entry{Term: term, Index: index, Data: make([]byte, s.sizes[index-s.compacted-1])}
}

// build returns the log, and what the log holds by index (the naive view).
func (s sliceScenario) build(t testing.TB) (*entryLog, map[uint64]pb.Entry) {
	ms := storageAt(t, s.compacted, 1)
	truth := map[uint64]pb.Entry{}
	var stored, unstable []pb.Entry
	for i := s.compacted + 1; i <= s.storedTo; i++ {
		stored = append(stored, s.entry(1, i))
		truth[i] = stored[len(stored)-1]
	}
	require.NoError(t, ms.Append(stored))
	l := openLog(ms, discardLogger, noLimit)
	if s.unstableAt <= s.last {
		for i := s.unstableAt; i <= s.last; i++ {
			unstable = append(unstable, s.entry(2, i))
			truth[i] = unstable[len(unstable)-1]
		}
		l.write(unstable...)
	}
	// Storage entries past the unstable part's end are no longer in the log.
	if len(unstable) > 0 {
		for i := s.last + 1; i <= s.storedTo; i++ {
			delete(truth, i)
		}
	}
	return l, truth
}

// naiveSlice is the specification of raftLog.slice: walk the range and keep
// entries while the running size is within max, but always the first one.
func naiveSlice(truth map[uint64]pb.Entry, lo, hi uint64, max entryEncodingSize) []pb.Entry {
	var out []pb.Entry
	var size entryEncodingSize
	for i := lo; i < hi; i++ {
		e := truth[i]
		size += entryEncodingSize(e.Size())
		if len(out) > 0 && size > max {
			break
		}
		out = append(out, e)
	}
	return out
}

func TestLogReadMatchesNaive(t *testing.T) {
	check := func(s sliceScenario) bool {
		l, truth := s.build(t)
		got, err := l.read(s.lo, s.hi, s.max)
		if s.lo <= s.compacted {
			return errors.Is(err, ErrCompacted)
		}
		want := naiveSlice(truth, s.lo, s.hi, s.max)
		if err != nil || len(got) != len(want) || (len(want) > 0 && !reflect.DeepEqual(got, want)) {
			t.Logf("scenario %+v: got %v (err %v), want %v", s, got, err, want)
			return false
		}
		// scan must deliver the same entries, in pages that each obey the
		// slice rule.
		var scanned []pb.Entry
		err = l.pages(s.lo, s.hi, s.max, func(page []pb.Entry) error {
			if !reflect.DeepEqual(page, naiveSlice(truth, page[0].Index, s.hi, s.max)) {
				return fmt.Errorf("page %v is not a maximal page", page)
			}
			scanned = append(scanned, page...)
			return nil
		})
		if err != nil || uint64(len(scanned)) != s.hi-s.lo {
			t.Logf("scenario %+v: scan got %d entries, err %v", s, len(scanned), err)
			return false
		}
		return true
	}
	cfg := &quick.Config{MaxCount: 2000, Rand: rand.New(rand.NewSource(42))}
	if err := quick.Check(check, cfg); err != nil {
		t.Fatal(err)
	}
}

func TestLogScan(t *testing.T) {
	ents := sized(1, 1, 10, 20)
	one := encodedSizeOf(ents[:1])
	l := testLog(t, 0, 0, ents[:6], ents[6:])

	var pages [][2]uint64
	err := l.pages(2, 10, 3*one, func(p []pb.Entry) error {
		pages = append(pages, [2]uint64{p[0].Index, p[len(p)-1].Index})
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, [][2]uint64{{2, 4}, {5, 7}, {8, 9}}, pages)

	stop := errors.New("enough")
	calls := 0
	err = l.pages(1, 11, one, func([]pb.Entry) error {
		calls++
		if calls == 3 {
			return stop
		}
		return nil
	})
	require.ErrorIs(t, err, stop)
	require.Equal(t, 3, calls)

	require.NoError(t, l.storage.(*MemoryStorage).Compact(3))
	require.ErrorIs(t, l.pages(2, 5, noLimit, func([]pb.Entry) error { return nil }), ErrCompacted)
}

// TestRaftLogPersistenceCycle runs entries and a snapshot through the
// hand-out, persist and acknowledge cycle the way RawNode will.
func TestLogPersistenceCycle(t *testing.T) {
	ms := storageAt(t, 0, 0, termRun(1, 1, 2)...)
	l := openLog(ms, discardLogger, noLimit)
	require.Equal(t, uint64(3), l.write(termRun(1, 3, 3)...))
	require.Equal(t, uint64(5), l.write(termRun(1, 4, 5)...))

	require.True(t, l.hasToPersist())
	batch := l.toPersist()
	require.Equal(t, termRun(1, 3, 5), batch)
	l.markPersisting()
	require.False(t, l.hasToPersist())
	require.True(t, l.hasUndurable())

	l.raiseCommit(5)
	require.Equal(t, termRun(1, 1, 2), l.toApply(false), "only durable entries without allowUnstable")
	require.Equal(t, termRun(1, 1, 5), l.toApply(true))

	require.NoError(t, ms.Append(batch))
	l.markDurable(entryID{term: 1, index: 5})
	require.False(t, l.hasUndurable())
	require.Equal(t, termRun(1, 1, 5), l.toApply(false))
	require.Equal(t, termRun(1, 1, 5), l.everything())
	require.Equal(t, termRun(1, 4, 5), mustEntries(t, l, 4))
	ents, err := l.entriesFrom(6, noLimit)
	require.NoError(t, err)
	require.Nil(t, ents)

	// A snapshot from the leader replaces the log; committed entries wait
	// until it is durable.
	snap := *snapAt(12, 3)
	l.installSnapshot(snap)
	require.Equal(t, uint64(12), l.committed)
	require.True(t, l.hasSnapshotToPersist())
	require.Equal(t, &snap, l.snapshotToPersist())
	require.False(t, l.hasToApply(true))
	l.markPersisting()
	require.False(t, l.hasSnapshotToPersist())
	require.True(t, l.snapshotPending())

	require.NoError(t, ms.ApplySnapshot(snap))
	l.markSnapshotDurable(12)
	require.False(t, l.snapshotPending())
	require.Equal(t, uint64(13), l.first())
	require.Equal(t, uint64(12), l.last())
	l.markApplied(12, 0)
	require.False(t, l.hasToApply(true))
}

func mustEntries(t testing.TB, l *entryLog, from uint64) []pb.Entry {
	t.Helper()
	ents, err := l.entriesFrom(from, noLimit)
	require.NoError(t, err)
	return ents
}

func TestLogString(t *testing.T) {
	l := testLog(t, 0, 0, termRun(1, 1, 2), termRun(1, 3, 4))
	l.raiseCommit(3)
	require.Equal(t, "committed=3, applied=0, applying=0, unstable.offset=3, unstable.offsetInProgress=3, len(unstable.Entries)=2", l.String())
}

// BenchmarkRaftLogAppend appends single entries the way a leader does, with
// the persist/acknowledge cycle every 64 entries.
func BenchmarkLogAppend(b *testing.B) {
	ms := NewMemoryStorage()
	l := openLog(ms, discardLogger, noLimit)
	data := make([]byte, 128)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		idx := l.last() + 1
		l.write(pb.Entry{Term: 1, Index: idx, Data: data})
		if idx%64 == 0 {
			batch := l.toPersist()
			l.markPersisting()
			_ = ms.Append(batch)
			l.markDurable(entryID{term: 1, index: idx})
		}
	}
}

// BenchmarkRaftLogSlice reads 100-entry ranges straddling the storage and
// unstable boundary, unlimited and with a budget of about 30 entries.
func BenchmarkLogRead(b *testing.B) {
	ms := storageAt(b, 0, 0, sized(1, 1, 1000, 128)...)
	l := openLog(ms, discardLogger, noLimit)
	l.write(sized(1, 1001, 2000, 128)...)
	limit := 30 * encodedSizeOf(sized(1, 1000, 1000, 128))
	for _, bc := range []struct {
		name string
		max  entryEncodingSize
	}{{"unlimited", noLimit}, {"limited", limit}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				lo := uint64(951 + i%40)
				if _, err := l.read(lo, lo+100, bc.max); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkMemoryStorageAppendEntries appends batches of 8 entries and reads
// back the latest 8.
func BenchmarkMemoryStorageAppendEntries(b *testing.B) {
	ms := NewMemoryStorage()
	data := make([]byte, 128)
	batch := make([]pb.Entry, 8)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		first := uint64(i)*8 + 1
		for k := range batch {
			batch[k] = pb.Entry{Term: 1, Index: first + uint64(k), Data: data}
		}
		if err := ms.Append(batch); err != nil {
			b.Fatal(err)
		}
		if _, err := ms.Entries(first, first+8, noLimit); err != nil {
			b.Fatal(err)
		}
	}
}

// TestFitsWholeNeverOverstates checks fitsWhole against the encoded sizes:
// whenever it says a batch fits, prefixWithin would keep all of it.
func TestFitsWholeNeverOverstates(t *testing.T) {
	rng := rand.New(rand.NewSource(9))
	for k := 0; k < 5000; k++ {
		ents := make([]pb.Entry, rng.Intn(6))
		for i := range ents {
			ents[i] = pb.Entry{Term: rng.Uint64() >> uint(rng.Intn(64)), Index: rng.Uint64() >> uint(rng.Intn(64)),
				Type: pb.EntryType(rng.Intn(3))}
			if rng.Intn(3) > 0 {
				ents[i].Data = make([]byte, rng.Intn(300))
			}
		}
		budget := entryEncodingSize(rng.Intn(2000))
		if fitsWhole(ents, budget) {
			require.LessOrEqual(t, encodedSizeOf(ents), budget, "%v", ents)
		}
	}
	require.True(t, fitsWhole(sized(1, 1, 3, 10), noLimit))
	require.True(t, fitsWhole(sized(1, 1, 3, 10), 3*(maxEntryOverhead+10)))
	require.False(t, fitsWhole(sized(1, 1, 3, 10), 3*(maxEntryOverhead+10)-1))
}
