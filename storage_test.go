package raft

import (
	"fmt"
	"math"
	"math/rand"
	"slices"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	pb "github.com/raftkit/raft/raftpb"
)

// run builds the entries [from, to] all of the given term; the payload of
// each entry names it, so that tests can tell copies apart.
func termRun(term, from, to uint64) []pb.Entry {
	var out []pb.Entry
	for i := from; i <= to; i++ {
		out = append(out, pb.Entry{Term: term, Index: i, Data: []byte(fmt.Sprintf("%d@%d", i, term))})
	}
	return out
}

// cat concatenates entry runs.
func cat(runs ...[]pb.Entry) []pb.Entry {
	var out []pb.Entry
	for _, r := range runs {
		out = append(out, r...)
	}
	return out
}

// storageAt returns a MemoryStorage compacted at (index, term) that holds ents
// after that point.
func storageAt(t testing.TB, index, term uint64, ents ...pb.Entry) *MemoryStorage {
	t.Helper()
	ms := NewMemoryStorage()
	if index > 0 {
		require.NoError(t, ms.ApplySnapshot(pb.Snapshot{Metadata: pb.SnapshotMetadata{Index: index, Term: term}}))
	}
	require.NoError(t, ms.Append(ents))
	return ms
}

// storedEntries reads back everything ms holds, as a deep copy.
func storedEntries(t testing.TB, ms *MemoryStorage) []pb.Entry {
	t.Helper()
	first, _ := ms.FirstIndex()
	last, _ := ms.LastIndex()
	if last < first {
		return nil
	}
	ents, err := ms.Entries(first, last+1, noLimit)
	require.NoError(t, err)
	return deepCopy(ents)
}

func deepCopy(ents []pb.Entry) []pb.Entry {
	out := make([]pb.Entry, len(ents))
	for i, e := range ents {
		e.Data = slices.Clone(e.Data)
		out[i] = e
	}
	return out
}

func TestMemoryStorageEmpty(t *testing.T) {
	ms := NewMemoryStorage()
	first, err := ms.FirstIndex()
	require.NoError(t, err)
	require.Equal(t, uint64(1), first)
	last, err := ms.LastIndex()
	require.NoError(t, err)
	require.Equal(t, uint64(0), last)

	term, err := ms.Term(0)
	require.NoError(t, err)
	require.Zero(t, term)
	_, err = ms.Term(1)
	require.ErrorIs(t, err, ErrUnavailable)

	_, err = ms.Entries(0, 1, noLimit)
	require.ErrorIs(t, err, ErrCompacted)
	_, err = ms.Entries(1, 1, noLimit)
	require.ErrorIs(t, err, ErrUnavailable)

	snap, err := ms.Snapshot()
	require.NoError(t, err)
	require.Equal(t, pb.Snapshot{}, snap)
	hs, cs, err := ms.InitialState()
	require.NoError(t, err)
	require.Equal(t, pb.HardState{}, hs)
	require.Equal(t, pb.ConfState{}, cs)
}

func TestMemoryStorageTerm(t *testing.T) {
	// Compacted at 20@4; entries 21..23 at term 4 and 24..25 at term 6.
	ms := storageAt(t, 20, 4, cat(termRun(4, 21, 23), termRun(6, 24, 25))...)
	for _, tc := range []struct {
		i    uint64
		term uint64
		err  error
	}{
		{i: 0, err: ErrCompacted},
		{i: 19, err: ErrCompacted},
		{i: 20, term: 4}, // the compaction point keeps its term
		{i: 21, term: 4},
		{i: 23, term: 4},
		{i: 24, term: 6},
		{i: 25, term: 6},
		{i: 26, err: ErrUnavailable},
		{i: 1 << 40, err: ErrUnavailable},
	} {
		t.Run(fmt.Sprint(tc.i), func(t *testing.T) {
			term, err := ms.Term(tc.i)
			require.ErrorIs(t, err, tc.err)
			require.Equal(t, tc.term, term)
		})
	}
}

func TestMemoryStorageEntries(t *testing.T) {
	stored := cat(termRun(2, 31, 33), termRun(3, 34, 36))
	ms := storageAt(t, 30, 2, stored...)
	size := func(n int) uint64 { return uint64(encodedSizeOf(stored[:n])) }
	for _, tc := range []struct {
		name         string
		lo, hi, max  uint64
		wantFrom, to uint64 // expected entries [wantFrom, to)
		err          error
	}{
		{name: "below compaction", lo: 29, hi: 33, max: noLimit, err: ErrCompacted},
		{name: "at compaction point", lo: 30, hi: 33, max: noLimit, err: ErrCompacted},
		{name: "empty range", lo: 33, hi: 33, max: noLimit, wantFrom: 33, to: 33},
		{name: "empty range at end", lo: 37, hi: 37, max: noLimit, wantFrom: 37, to: 37},
		{name: "everything", lo: 31, hi: 37, max: noLimit, wantFrom: 31, to: 37},
		{name: "middle", lo: 32, hi: 35, max: noLimit, wantFrom: 32, to: 35},
		{name: "zero budget still one entry", lo: 31, hi: 37, max: 0, wantFrom: 31, to: 32},
		{name: "budget under first entry", lo: 31, hi: 37, max: size(1) - 1, wantFrom: 31, to: 32},
		{name: "budget exactly two", lo: 31, hi: 37, max: size(2), wantFrom: 31, to: 33},
		{name: "budget just under three", lo: 31, hi: 37, max: size(3) - 1, wantFrom: 31, to: 33},
		{name: "budget exactly all", lo: 31, hi: 37, max: size(6), wantFrom: 31, to: 37},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ms.Entries(tc.lo, tc.hi, tc.max)
			require.ErrorIs(t, err, tc.err)
			if tc.err != nil {
				return
			}
			require.Equal(t, stored[tc.wantFrom-31:tc.to-31], got)
			require.Equal(t, len(got), cap(got), "returned slice must have no spare capacity")
		})
	}
	t.Run("out of bounds panics", func(t *testing.T) {
		require.Panics(t, func() { _, _ = ms.Entries(31, 38, noLimit) })
		require.Panics(t, func() { _, _ = ms.Entries(35, 33, noLimit) })
	})
	t.Run("only the compaction point", func(t *testing.T) {
		ms := storageAt(t, 30, 2)
		_, err := ms.Entries(31, 31, noLimit)
		require.ErrorIs(t, err, ErrUnavailable)
	})
}

func TestMemoryStorageAppend(t *testing.T) {
	base := cat(termRun(1, 11, 13), termRun(2, 14, 15)) // compacted at 10@1
	for _, tc := range []struct {
		name   string
		append []pb.Entry
		want   []pb.Entry
		panics bool
	}{
		{name: "nothing", append: nil, want: base},
		{name: "at the end", append: termRun(2, 16, 17), want: cat(base, termRun(2, 16, 17))},
		{name: "same entries again", append: termRun(2, 14, 15), want: base},
		{name: "conflict truncates the suffix", append: termRun(3, 13, 13), want: cat(termRun(1, 11, 12), termRun(3, 13, 13))},
		{name: "replace everything stored", append: termRun(4, 11, 12), want: termRun(4, 11, 12)},
		{name: "entirely compacted is ignored", append: termRun(1, 5, 10), want: base},
		{name: "compacted prefix is skipped", append: termRun(5, 8, 12), want: termRun(5, 11, 12)},
		{name: "gap panics", append: termRun(2, 17, 18), panics: true},
		{name: "non-contiguous panics", append: []pb.Entry{{Index: 16, Term: 2}, {Index: 18, Term: 2}}, panics: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ms := storageAt(t, 10, 1, base...)
			if tc.panics {
				require.Panics(t, func() { _ = ms.Append(tc.append) })
				require.Equal(t, base, storedEntries(t, ms), "a refused append must not change the log")
				return
			}
			require.NoError(t, ms.Append(tc.append))
			require.Equal(t, tc.want, storedEntries(t, ms))
			first, _ := ms.FirstIndex()
			require.Equal(t, uint64(11), first)
		})
	}
}

func TestMemoryStorageCompact(t *testing.T) {
	stored := cat(termRun(1, 11, 13), termRun(2, 14, 15))
	for _, tc := range []struct {
		name      string
		at        uint64
		err       error
		panics    bool
		wantFirst uint64
	}{
		{name: "below the compaction point", at: 9, err: ErrCompacted, wantFirst: 11},
		{name: "at the compaction point", at: 10, err: ErrCompacted, wantFirst: 11},
		{name: "first entry", at: 11, wantFirst: 12},
		{name: "middle, at a term boundary", at: 14, wantFirst: 15},
		{name: "last entry", at: 15, wantFirst: 16},
		{name: "past the last entry", at: 16, panics: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ms := storageAt(t, 10, 1, stored...)
			if tc.panics {
				require.Panics(t, func() { _ = ms.Compact(tc.at) })
				return
			}
			require.ErrorIs(t, ms.Compact(tc.at), tc.err)
			first, _ := ms.FirstIndex()
			last, _ := ms.LastIndex()
			require.Equal(t, tc.wantFirst, first)
			require.Equal(t, uint64(15), last, "compaction never shortens the log's end")
			if want := stored[first-11:]; len(want) > 0 {
				require.Equal(t, want, storedEntries(t, ms))
			} else {
				require.Empty(t, storedEntries(t, ms))
			}
			// The term at the compaction point survives for matching.
			term, err := ms.Term(first - 1)
			require.NoError(t, err)
			require.Equal(t, map[uint64]uint64{10: 1, 11: 1, 14: 2, 15: 2}[first-1], term)
			_, err = ms.Term(first - 2)
			require.ErrorIs(t, err, ErrCompacted)
		})
	}
}

func TestMemoryStorageCreateSnapshot(t *testing.T) {
	cs := &pb.ConfState{Voters: []uint64{1, 2, 3}}
	newMS := func() *MemoryStorage { return storageAt(t, 10, 1, cat(termRun(1, 11, 12), termRun(3, 13, 14))...) }

	t.Run("takes the entry's term and keeps the log", func(t *testing.T) {
		ms := newMS()
		snap, err := ms.CreateSnapshot(13, cs, []byte("state"))
		require.NoError(t, err)
		require.Equal(t, pb.SnapshotMetadata{Index: 13, Term: 3, ConfState: *cs}, snap.Metadata)
		require.Equal(t, []byte("state"), snap.Data)
		got, err := ms.Snapshot()
		require.NoError(t, err)
		require.Equal(t, snap, got)
		first, _ := ms.FirstIndex()
		require.Equal(t, uint64(11), first)
		_, gotCS, _ := ms.InitialState()
		require.Equal(t, *cs, gotCS)
	})
	t.Run("nil ConfState keeps the previous one", func(t *testing.T) {
		ms := newMS()
		_, err := ms.CreateSnapshot(12, cs, nil)
		require.NoError(t, err)
		snap, err := ms.CreateSnapshot(14, nil, []byte("later"))
		require.NoError(t, err)
		require.Equal(t, *cs, snap.Metadata.ConfState)
		require.Equal(t, uint64(14), snap.Metadata.Index)
	})
	t.Run("not newer than the current snapshot", func(t *testing.T) {
		ms := newMS()
		_, err := ms.CreateSnapshot(10, cs, nil) // the applied snapshot is at 10
		require.ErrorIs(t, err, ErrSnapOutOfDate)
		_, err = ms.CreateSnapshot(13, cs, nil)
		require.NoError(t, err)
		for _, i := range []uint64{12, 13} {
			_, err = ms.CreateSnapshot(i, cs, nil)
			require.ErrorIs(t, err, ErrSnapOutOfDate)
		}
	})
	t.Run("below a compaction that ran ahead", func(t *testing.T) {
		ms := newMS()
		require.NoError(t, ms.Compact(13))
		_, err := ms.CreateSnapshot(12, cs, nil)
		require.ErrorIs(t, err, ErrCompacted)
		snap, err := ms.CreateSnapshot(13, cs, nil) // the compaction point's term is known
		require.NoError(t, err)
		require.Equal(t, uint64(3), snap.Metadata.Term)
	})
	t.Run("past the last index panics", func(t *testing.T) {
		require.Panics(t, func() { _, _ = newMS().CreateSnapshot(15, cs, nil) })
	})
}

func TestMemoryStorageApplySnapshot(t *testing.T) {
	ms := storageAt(t, 0, 0, termRun(1, 1, 5)...)
	snap := pb.Snapshot{
		Data:     []byte("sm"),
		Metadata: pb.SnapshotMetadata{Index: 8, Term: 2, ConfState: pb.ConfState{Voters: []uint64{4}}},
	}
	require.NoError(t, ms.ApplySnapshot(snap))
	first, _ := ms.FirstIndex()
	last, _ := ms.LastIndex()
	require.Equal(t, uint64(9), first)
	require.Equal(t, uint64(8), last)
	term, err := ms.Term(8)
	require.NoError(t, err)
	require.Equal(t, uint64(2), term)
	got, _ := ms.Snapshot()
	require.Equal(t, snap, got)
	_, cs, _ := ms.InitialState()
	require.Equal(t, []uint64{4}, cs.Voters)

	// The log continues right after the snapshot.
	require.NoError(t, ms.Append(termRun(2, 9, 10)))
	require.Equal(t, termRun(2, 9, 10), storedEntries(t, ms))

	older := snap
	older.Metadata.Index = 7
	require.ErrorIs(t, ms.ApplySnapshot(older), ErrSnapOutOfDate)
	require.ErrorIs(t, ms.ApplySnapshot(snap), ErrSnapOutOfDate)
	require.Equal(t, termRun(2, 9, 10), storedEntries(t, ms), "refused snapshots leave the log alone")
}

func TestMemoryStorageHardState(t *testing.T) {
	ms := NewMemoryStorage()
	hs := pb.HardState{Term: 7, Vote: 3, Commit: 2}
	require.NoError(t, ms.SetHardState(hs))
	got, _, err := ms.InitialState()
	require.NoError(t, err)
	require.Equal(t, hs, got)
}

// TestMemoryStorageNoAliasing checks that what a caller holds from Entries
// never changes, whatever the caller or the storage does afterwards.
func TestMemoryStorageNoAliasing(t *testing.T) {
	ms := storageAt(t, 0, 0, termRun(1, 1, 6)...)
	held, err := ms.Entries(2, 5, noLimit)
	require.NoError(t, err)
	want := deepCopy(held)

	// The caller appends to its slice: storage must not see it.
	grown := append(held, pb.Entry{Index: 5, Term: 9, Data: []byte("caller")})
	_ = grown
	require.Equal(t, termRun(1, 1, 6), storedEntries(t, ms))

	// Storage truncates and rewrites the range the caller holds.
	require.NoError(t, ms.Append(termRun(2, 3, 8)))
	require.Equal(t, want, held)
	// ...and grows in place past the end, and compacts.
	require.NoError(t, ms.Append(termRun(2, 9, 20)))
	require.NoError(t, ms.Compact(4))
	require.Equal(t, want, held)

	// A slice taken at the end of the log, then the log grows in place.
	tail, err := ms.Entries(19, 21, noLimit)
	require.NoError(t, err)
	tailWant := deepCopy(tail)
	tail = append(tail, pb.Entry{Index: 21, Term: 7})
	require.NoError(t, ms.Append(termRun(3, 21, 22)))
	require.Equal(t, tailWant, tail[:2])
	require.Equal(t, pb.Entry{Index: 21, Term: 7}, tail[2])
	term, _ := ms.Term(21)
	require.Equal(t, uint64(3), term)
}

// TestMemoryStorageMatchesModel drives MemoryStorage and a naive model (a
// map from index to entry) with the same random operations and compares
// every observable answer.
func TestMemoryStorageMatchesModel(t *testing.T) {
	rng := rand.New(rand.NewSource(7))
	for round := 0; round < 200; round++ {
		m := &storageModel{ms: NewMemoryStorage(), model: map[uint64]pb.Entry{0: {}}, term: 1}
		for step := 0; step < 60; step++ {
			checked := true
			switch op := rng.Intn(10); {
			case op < 5:
				m.appendRandom(t, rng)
			case op < 7:
				checked = m.compactRandom(t, rng)
			case op < 8:
				checked = m.snapshotRandom(t, rng)
			default:
				m.readRandom(t, rng)
			}
			if checked {
				m.checkBounds(t)
			}
		}
	}
}

// storageModel is a MemoryStorage and a map model of what it must hold.
// Invariant: model has an entry for every index in [base, last].
type storageModel struct {
	ms                    *MemoryStorage
	model                 map[uint64]pb.Entry
	base, last, snapIndex uint64 // compaction point, last index, snapshot index
	term                  uint64
}

// appendRandom appends a random run, possibly overlapping, and sometimes
// starting below the compaction point.
func (m *storageModel) appendRandom(t *testing.T, rng *rand.Rand) {
	from := m.base + 1 + uint64(rng.Int63n(int64(m.last-m.base+1)))
	if rng.Intn(4) == 0 && from > 3 {
		from -= 3 // sometimes start below the compaction point
	}
	m.term++
	ents := termRun(m.term, from, from+uint64(rng.Intn(5)))
	require.NoError(t, m.ms.Append(ents))
	for _, e := range ents {
		if e.Index > m.base {
			m.model[e.Index] = e
		}
	}
	if end := ents[len(ents)-1].Index; end > m.base {
		for i := end + 1; i <= m.last; i++ {
			delete(m.model, i)
		}
		m.last = end
	}
}

// compactRandom compacts at a random index; it reports false when the
// compaction was (rightly) refused, in which case the step is not checked.
func (m *storageModel) compactRandom(t *testing.T, rng *rand.Rand) bool {
	at := m.base + uint64(rng.Int63n(int64(m.last-m.base+1)))
	err := m.ms.Compact(at)
	if at <= m.base {
		require.ErrorIs(t, err, ErrCompacted)
		return false
	}
	require.NoError(t, err)
	for i := m.base; i < at; i++ {
		delete(m.model, i)
	}
	m.base = at
	return true
}

// snapshotRandom creates a snapshot at a random index; it reports false
// when the snapshot was (rightly) refused, in which case the step is not
// checked.
func (m *storageModel) snapshotRandom(t *testing.T, rng *rand.Rand) bool {
	at := m.base + uint64(rng.Int63n(int64(m.last-m.base+1)))
	_, err := m.ms.CreateSnapshot(at, nil, nil)
	if at <= m.snapIndex {
		require.ErrorIs(t, err, ErrSnapOutOfDate)
		return false
	}
	require.NoError(t, err)
	m.snapIndex = at
	return true
}

// readRandom reads a random range with a random budget and checks it
// against the model.
func (m *storageModel) readRandom(t *testing.T, rng *rand.Rand) {
	lo := m.base + uint64(rng.Int63n(int64(m.last-m.base+2)))
	hi := lo + uint64(rng.Int63n(int64(m.last+2-lo)))
	budget := uint64(rng.Intn(60))
	got, err := m.ms.Entries(lo, hi, budget)
	switch {
	case lo <= m.base:
		require.ErrorIs(t, err, ErrCompacted)
	case m.last == m.base:
		require.ErrorIs(t, err, ErrUnavailable)
	default:
		require.NoError(t, err)
		var want []pb.Entry
		var size uint64
		for i := lo; i < hi; i++ {
			e := m.model[i]
			size += uint64(e.Size())
			if len(want) > 0 && size > budget {
				break
			}
			want = append(want, e)
		}
		require.Equal(t, len(want), len(got))
		if len(want) > 0 {
			require.Equal(t, want, got)
		}
	}
}

// checkBounds checks the storage's first and last index and every term
// against the model.
func (m *storageModel) checkBounds(t *testing.T) {
	first, _ := m.ms.FirstIndex()
	lastGot, _ := m.ms.LastIndex()
	require.Equal(t, m.base+1, first)
	require.Equal(t, m.last, lastGot)
	for i := m.base; i <= m.last; i++ {
		got, err := m.ms.Term(i)
		require.NoError(t, err)
		require.Equal(t, m.model[i].Term, got, "term of %d", i)
	}
}

func TestMemoryStorageConcurrentUse(t *testing.T) {
	ms := NewMemoryStorage()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for i := uint64(1); i <= 500; i++ {
			_ = ms.Append(termRun(1, i, i))
			if i%50 == 0 {
				_ = ms.Compact(i - 10)
			}
		}
	}()
	go func() {
		defer wg.Done()
		for k := 0; k < 500; k++ {
			first, _ := ms.FirstIndex()
			last, _ := ms.LastIndex()
			_, _ = ms.Term(last)
			if ents, err := ms.Entries(first, last+1, noLimit); err == nil && len(ents) > 0 {
				_ = ents[0].Index
			}
			_, _, _ = ms.InitialState()
			_, _ = ms.Snapshot()
		}
	}()
	wg.Wait()
	last, _ := ms.LastIndex()
	require.Equal(t, uint64(500), last)
}

// TestLogBoundsFollowMemoryStorage checks the invariant that the log's
// lock-free reads of a MemoryStorage's bounds rely on: after any change the
// application makes to the storage behind raft's back (Append, Compact,
// ApplySnapshot, at any time), LogBounds answers exactly what FirstIndex,
// LastIndex and Term answer.
func TestLogBoundsFollowMemoryStorage(t *testing.T) {
	rng := rand.New(rand.NewSource(11))
	ms := NewMemoryStorage()
	check := func(what string) {
		first, _ := ms.FirstIndex()
		last, _ := ms.LastIndex()
		lastTerm, err := ms.Term(last)
		require.NoError(t, err)
		f, l, lt := ms.LogBounds()
		require.Equal(t, [3]uint64{first, last, lastTerm}, [3]uint64{f, l, lt}, what)
	}
	check("empty")
	term := uint64(1)
	for step := 0; step < 2000; step++ {
		first, _ := ms.FirstIndex()
		last, _ := ms.LastIndex()
		switch op := rng.Intn(10); {
		case op < 6: // append at the end or over a suffix
			from := first + uint64(rng.Int63n(int64(last-first+2)))
			term++
			require.NoError(t, ms.Append(termRun(term, from, from+uint64(rng.Intn(4)))))
			check("append")
		case op < 8:
			if last >= first {
				require.NoError(t, ms.Compact(first+uint64(rng.Int63n(int64(last-first+1)))))
				check("compact")
			}
		default:
			term++
			snap := pb.Snapshot{Metadata: pb.SnapshotMetadata{Index: last + uint64(rng.Intn(5)) + 1, Term: term}}
			require.NoError(t, ms.ApplySnapshot(snap))
			check("apply snapshot")
		}
	}
}

// TestMemoryStorageCompactKeepsRoom checks the capacity Compact leaves:
// room for one more interval like the one it compacts (plus an eighth), so
// that a log compacted at a steady pace never grows in between, however
// long the interval, without creeping up from one compaction to the next;
// after a burst, the next regular interval brings the array back down.
// While Entries hands nothing out, the array is reused: no allocation at
// all per interval (one per compaction before that reuse).
func TestMemoryStorageCompactKeepsRoom(t *testing.T) {
	ms := NewMemoryStorage()
	next := uint64(1)
	one := make([]pb.Entry, 1)
	appendN := func(n int) {
		for k := 0; k < n; k++ {
			one[0] = pb.Entry{Index: next, Term: 1}
			require.NoError(t, ms.Append(one))
			next++
		}
	}
	const interval = 6000
	for range 2 { // from the second compaction on, intervals are equal
		appendN(interval)
		require.NoError(t, ms.Compact(next-3))
	}
	steady := cap(ms.log)
	allocs := testing.AllocsPerRun(20, func() {
		appendN(interval)
		require.NoError(t, ms.Compact(next-3))
	})
	require.Equal(t, 0.0, allocs, "the array is reused by compaction, and not grown while appending")
	require.Equal(t, steady, cap(ms.log), "the capacity does not creep")

	appendN(20 * interval)
	require.NoError(t, ms.Compact(next-3))
	appendN(interval)
	require.NoError(t, ms.Compact(next-3))
	require.LessOrEqual(t, cap(ms.log), steady, "a burst does not pin its array past the next compaction")
	first, _ := ms.FirstIndex()
	last, _ := ms.LastIndex()
	require.Equal(t, [2]uint64{next - 2, next - 1}, [2]uint64{first, last})
}

// TestMemoryStorageCompactKeepsLentEntries checks that Compact does not
// reuse an array Entries handed out from: the entries a caller holds keep
// their contents through a compaction and the appends after it
// (invariant 3), and once compaction moved to a fresh array, that one is
// reused again.
func TestMemoryStorageCompactKeepsLentEntries(t *testing.T) {
	ms := NewMemoryStorage()
	next := uint64(1)
	appendN := func(n int) {
		for k := 0; k < n; k++ {
			require.NoError(t, ms.Append([]pb.Entry{{Index: next, Term: 1, Data: []byte{byte(next)}}}))
			next++
		}
	}
	appendN(64)
	require.NoError(t, ms.Compact(32)) // a steady array from here on
	appendN(32)
	held, err := ms.Entries(33, 49, math.MaxUint64)
	require.NoError(t, err)
	want := append([]pb.Entry(nil), held...)
	for k := range want {
		want[k].Data = append([]byte(nil), want[k].Data...)
	}
	require.NoError(t, ms.Compact(next-3))
	appendN(32)
	require.Equal(t, want, held, "entries handed out by Entries were overwritten")

	require.NoError(t, ms.Compact(next-3)) // onto a fresh array, not lent
	appendN(32)
	arr := &ms.log[0]
	require.NoError(t, ms.Compact(next-3))
	require.Same(t, arr, &ms.log[0], "an array nothing was handed out from is reused")
}
