package raft

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	pb "github.com/raftkit/raft/raftpb"
)

// snapAt is a snapshot at (index, term) with no data.
func snapAt(index, term uint64) *pb.Snapshot {
	return &pb.Snapshot{Metadata: pb.SnapshotMetadata{Index: index, Term: term}}
}

// newUnstable returns an unstable part starting at offset with the given
// snapshot (may be nil) and entries, none of them handed out yet.
func newUnstable(offset uint64, snap *pb.Snapshot, ents ...pb.Entry) *unstable {
	return &unstable{
		snapshot:         snap,
		entries:          ents,
		offset:           offset,
		offsetInProgress: offset,
		logger:           discardLogger,
	}
}

// checkUnstableInvariants fails the test if u breaks one of the numbered
// invariants on unstable.
func checkUnstableInvariants(t testing.TB, u *unstable) {
	t.Helper()
	for k, e := range u.entries {
		require.Equal(t, u.offset+uint64(k), e.Index, "invariant 1")
	}
	require.LessOrEqual(t, u.offset, u.offsetInProgress, "invariant 2")
	require.LessOrEqual(t, u.offsetInProgress, u.end(), "invariant 2")
	if u.snapshot != nil {
		require.Less(t, u.snapshot.Metadata.Index, u.offset, "invariant 3")
	}
}

func TestUnstableIndexesAndTerms(t *testing.T) {
	type termAt struct {
		i, term uint64
		ok      bool
	}
	for _, tc := range []struct {
		name        string
		u           *unstable
		first, last uint64
		hasFirst    bool
		hasLast     bool
		terms       []termAt
	}{
		{
			name:  "empty",
			u:     newUnstable(8, nil),
			terms: []termAt{{i: 7}, {i: 8}},
		},
		{
			name: "entries only", u: newUnstable(8, nil, cat(run(2, 8, 9), run(5, 10, 10))...),
			last: 10, hasLast: true,
			terms: []termAt{{i: 7}, {i: 8, term: 2, ok: true}, {i: 10, term: 5, ok: true}, {i: 11}},
		},
		{
			name: "snapshot only", u: newUnstable(21, snapAt(20, 4)),
			first: 21, hasFirst: true, last: 20, hasLast: true,
			terms: []termAt{{i: 19}, {i: 20, term: 4, ok: true}, {i: 21}},
		},
		{
			name: "snapshot and entries", u: newUnstable(21, snapAt(20, 4), run(6, 21, 23)...),
			first: 21, hasFirst: true, last: 23, hasLast: true,
			terms: []termAt{{i: 19}, {i: 20, term: 4, ok: true}, {i: 22, term: 6, ok: true}, {i: 24}},
		},
		{
			// The snapshot is still pending while the entries after it were
			// already persisted and dropped.
			name: "snapshot behind the offset", u: newUnstable(25, snapAt(20, 4), run(6, 25, 25)...),
			first: 21, hasFirst: true, last: 25, hasLast: true,
			terms: []termAt{{i: 20, term: 4, ok: true}, {i: 21}, {i: 24}, {i: 25, term: 6, ok: true}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			first, ok := tc.u.maybeFirstIndex()
			require.Equal(t, tc.hasFirst, ok)
			require.Equal(t, tc.first, first)
			last, ok := tc.u.maybeLastIndex()
			require.Equal(t, tc.hasLast, ok)
			require.Equal(t, tc.last, last)
			for _, want := range tc.terms {
				term, ok := tc.u.maybeTerm(want.i)
				require.Equal(t, want.ok, ok, "index %d", want.i)
				require.Equal(t, want.term, term, "index %d", want.i)
			}
		})
	}
}

func TestUnstableStableTo(t *testing.T) {
	for _, tc := range []struct {
		name         string
		u            *unstable
		inProgress   uint64 // offsetInProgress before the ack; 0 means none
		ack          entryID
		wantOffset   uint64
		wantEntries  []pb.Entry
		wantProgress uint64
	}{
		{
			name: "prefix", u: newUnstable(5, nil, run(3, 5, 8)...), inProgress: 9,
			ack: entryID{term: 3, index: 6}, wantOffset: 7, wantEntries: run(3, 7, 8), wantProgress: 9,
		},
		{
			name: "everything", u: newUnstable(5, nil, run(3, 5, 8)...), inProgress: 9,
			ack: entryID{term: 3, index: 8}, wantOffset: 9, wantProgress: 9,
		},
		{
			// Acks can outrun acceptInProgress (e.g. storage caught up by other
			// means); offsetInProgress is dragged along.
			name: "beyond what was in progress", u: newUnstable(5, nil, run(3, 5, 8)...), inProgress: 6,
			ack: entryID{term: 3, index: 7}, wantOffset: 8, wantEntries: run(3, 8, 8), wantProgress: 8,
		},
		{
			name: "stale term is ignored", u: newUnstable(5, nil, cat(run(3, 5, 5), run(4, 6, 8))...), inProgress: 9,
			ack: entryID{term: 3, index: 6}, wantOffset: 5, wantEntries: cat(run(3, 5, 5), run(4, 6, 8)), wantProgress: 9,
		},
		{
			name: "newer term is ignored", u: newUnstable(5, nil, run(3, 5, 8)...), inProgress: 9,
			ack: entryID{term: 9, index: 7}, wantOffset: 5, wantEntries: run(3, 5, 8), wantProgress: 9,
		},
		{
			name: "past the end is ignored", u: newUnstable(5, nil, run(3, 5, 8)...), inProgress: 9,
			ack: entryID{term: 3, index: 9}, wantOffset: 5, wantEntries: run(3, 5, 8), wantProgress: 9,
		},
		{
			name: "already stable is ignored", u: newUnstable(5, nil, run(3, 5, 8)...), inProgress: 9,
			ack: entryID{term: 3, index: 4}, wantOffset: 5, wantEntries: run(3, 5, 8), wantProgress: 9,
		},
		{
			name: "the snapshot's index is not an entry", u: newUnstable(5, snapAt(4, 2), run(3, 5, 6)...), inProgress: 7,
			ack: entryID{term: 2, index: 4}, wantOffset: 5, wantEntries: run(3, 5, 6), wantProgress: 7,
		},
		{
			name: "entries after a pending snapshot", u: newUnstable(5, snapAt(4, 2), run(3, 5, 6)...), inProgress: 7,
			ack: entryID{term: 3, index: 5}, wantOffset: 6, wantEntries: run(3, 6, 6), wantProgress: 7,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := tc.u
			if tc.inProgress != 0 {
				u.offsetInProgress = tc.inProgress
			}
			u.stableTo(tc.ack)
			require.Equal(t, tc.wantOffset, u.offset)
			require.Equal(t, tc.wantEntries, u.entries)
			require.Equal(t, tc.wantProgress, u.offsetInProgress)
			checkUnstableInvariants(t, u)
		})
	}
}

// TestUnstableStaleAckAfterReplacement plays the race stableTo's term check
// exists for: entries are handed out for writing, a new leader replaces part
// of them before the write finishes, and the write's acknowledgement then
// arrives. It must not mark the replacement durable.
func TestUnstableStaleAckAfterReplacement(t *testing.T) {
	u := newUnstable(10, nil, run(2, 10, 13)...)
	require.Equal(t, run(2, 10, 13), u.nextEntries())
	u.acceptInProgress()
	require.Nil(t, u.nextEntries())

	// Term 3's leader overwrites 12.. while 10..13@2 are being written.
	u.truncateAndAppend(run(3, 12, 12))
	require.Equal(t, run(3, 12, 12), u.nextEntries(), "the replacement must be written too")

	// The old write completes: only the part that still matches counts.
	u.stableTo(entryID{term: 2, index: 13}) // 13 is gone
	u.stableTo(entryID{term: 2, index: 12}) // 12 is now @3
	require.Equal(t, uint64(10), u.offset)
	u.stableTo(entryID{term: 2, index: 11})
	require.Equal(t, uint64(12), u.offset)
	require.Equal(t, run(3, 12, 12), u.entries)
	require.Equal(t, run(3, 12, 12), u.nextEntries())
	checkUnstableInvariants(t, u)

	// Then the replacement's own write completes.
	u.acceptInProgress()
	u.stableTo(entryID{term: 3, index: 12})
	require.Empty(t, u.entries)
	require.Equal(t, uint64(13), u.offset)
}

func TestUnstableTruncateAndAppend(t *testing.T) {
	for _, tc := range []struct {
		name         string
		inProgress   uint64
		ents         []pb.Entry
		wantOffset   uint64
		wantEntries  []pb.Entry
		wantProgress uint64
	}{
		{
			name: "at the end", inProgress: 9, ents: run(3, 9, 10),
			wantOffset: 6, wantEntries: cat(run(2, 6, 8), run(3, 9, 10)), wantProgress: 9,
		},
		{
			name: "replace from the offset", inProgress: 9, ents: run(3, 6, 7),
			wantOffset: 6, wantEntries: run(3, 6, 7), wantProgress: 6,
		},
		{
			// Reaches into storage: persisting these will truncate storage.
			name: "replace from below the offset", inProgress: 8, ents: run(3, 4, 5),
			wantOffset: 4, wantEntries: run(3, 4, 5), wantProgress: 4,
		},
		{
			name: "truncate the in-progress part", inProgress: 9, ents: run(3, 7, 7),
			wantOffset: 6, wantEntries: cat(run(2, 6, 6), run(3, 7, 7)), wantProgress: 7,
		},
		{
			name: "truncate after the in-progress part", inProgress: 7, ents: run(3, 8, 9),
			wantOffset: 6, wantEntries: cat(run(2, 6, 7), run(3, 8, 9)), wantProgress: 7,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := newUnstable(6, nil, run(2, 6, 8)...)
			u.offsetInProgress = tc.inProgress
			u.truncateAndAppend(tc.ents)
			require.Equal(t, tc.wantOffset, u.offset)
			require.Equal(t, tc.wantEntries, u.entries)
			require.Equal(t, tc.wantProgress, u.offsetInProgress)
			checkUnstableInvariants(t, u)
		})
	}
	t.Run("a gap panics", func(t *testing.T) {
		u := newUnstable(6, nil, run(2, 6, 8)...)
		require.Panics(t, func() { u.truncateAndAppend(run(2, 10, 10)) })
	})
}

// TestUnstableHandedOutSlicesStayIntact holds on to slices unstable handed
// out (as a Ready being persisted would) while the log is truncated,
// replaced and appended to, and while the holder appends to them.
func TestUnstableHandedOutSlicesStayIntact(t *testing.T) {
	u := newUnstable(1, nil)
	u.truncateAndAppend(run(1, 1, 4))
	u.truncateAndAppend(run(1, 5, 5)) // leaves spare capacity in the array
	next := u.nextEntries()
	sliced := u.slice(2, 5)
	wantNext, wantSliced := deepCopy(next), deepCopy(sliced)
	require.Equal(t, len(next), cap(next))
	require.Equal(t, len(sliced), cap(sliced))

	_ = append(next, pb.Entry{Index: 6, Term: 9})
	_ = append(sliced, pb.Entry{Index: 5, Term: 9})
	u.truncateAndAppend(run(2, 3, 6))
	u.truncateAndAppend(run(2, 7, 9))
	require.Equal(t, wantNext, next)
	require.Equal(t, wantSliced, sliced)
	require.Equal(t, cat(run(1, 1, 2), run(2, 3, 9)), u.entries)

	// A caller's slice given to truncateAndAppend is not written past its
	// length either.
	mine := make([]pb.Entry, 2, 10)
	copy(mine, run(3, 1, 2))
	u.truncateAndAppend(mine)
	u.truncateAndAppend(run(3, 3, 3))
	require.Equal(t, []pb.Entry{{}, {}}, mine[2:4])
}

func TestUnstableSnapshotLifecycle(t *testing.T) {
	u := newUnstable(4, nil, run(1, 4, 6)...)
	u.offsetInProgress = 6
	u.restore(*snapAt(10, 3))
	checkUnstableInvariants(t, u)
	require.Empty(t, u.entries)
	require.Equal(t, uint64(11), u.offset)
	require.Equal(t, uint64(11), u.offsetInProgress)
	require.Equal(t, snapAt(10, 3), u.nextSnapshot())

	u.truncateAndAppend(run(3, 11, 12))
	u.acceptInProgress()
	require.Nil(t, u.nextSnapshot(), "handed out already")
	require.NotNil(t, u.snapshot, "but not durable yet")

	u.stableSnapTo(9) // stale ack for another snapshot
	require.NotNil(t, u.snapshot)
	u.stableSnapTo(10)
	require.Nil(t, u.snapshot)
	require.False(t, u.snapshotInProgress)
	u.stableSnapTo(10) // repeated ack is harmless
	require.Equal(t, run(3, 11, 12), u.entries)

	// A snapshot arriving while another is in progress is offered anew.
	u.restore(*snapAt(20, 4))
	require.Equal(t, snapAt(20, 4), u.nextSnapshot())
	u.acceptInProgress()
	u.restore(*snapAt(30, 5))
	require.Equal(t, snapAt(30, 5), u.nextSnapshot())
}

func TestUnstableSliceBounds(t *testing.T) {
	u := newUnstable(5, nil, run(1, 5, 8)...)
	for _, tc := range []struct {
		lo, hi uint64
		panics bool
	}{
		{lo: 5, hi: 5}, {lo: 5, hi: 9}, {lo: 9, hi: 9}, {lo: 6, hi: 8},
		{lo: 4, hi: 6, panics: true},
		{lo: 5, hi: 10, panics: true},
		{lo: 7, hi: 6, panics: true},
	} {
		t.Run(fmt.Sprintf("[%d,%d)", tc.lo, tc.hi), func(t *testing.T) {
			if tc.panics {
				require.Panics(t, func() { u.slice(tc.lo, tc.hi) })
				return
			}
			got := u.slice(tc.lo, tc.hi)
			require.Len(t, got, int(tc.hi-tc.lo))
			if len(got) > 0 {
				require.Equal(t, run(1, tc.lo, tc.hi-1), got)
			}
		})
	}
}

func TestUnstableReleasesPersistedArray(t *testing.T) {
	u := newUnstable(1, nil)
	for i := uint64(1); i <= 64; i++ {
		u.truncateAndAppend(run(1, i, i))
	}
	u.acceptInProgress()
	u.stableTo(entryID{term: 1, index: 60})
	require.Equal(t, run(1, 61, 64), u.entries)
	require.LessOrEqual(t, cap(u.entries), 2*len(u.entries), "a mostly dead array must be let go")
	u.stableTo(entryID{term: 1, index: 64})
	require.Nil(t, u.entries)
}
