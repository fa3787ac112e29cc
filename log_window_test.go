package raft

import (
	"math/rand"
	"testing"

	"github.com/stretchr/testify/require"

	pb "github.com/raftkit/raft/raftpb"
)

// snapAt is a snapshot at (index, term) with no data.
func snapAt(index, term uint64) *pb.Snapshot {
	return &pb.Snapshot{Metadata: pb.SnapshotMetadata{Index: index, Term: term}}
}

// countingStorage counts the Entries and Term calls that reach a
// MemoryStorage (its LogBounds fast path stays available).
type countingStorage struct {
	*MemoryStorage
	entries, terms int
}

func (c *countingStorage) Entries(lo, hi, maxSize uint64) ([]pb.Entry, error) {
	c.entries++
	return c.MemoryStorage.Entries(lo, hi, maxSize)
}

func (c *countingStorage) Term(i uint64) (uint64, error) {
	c.terms++
	return c.MemoryStorage.Term(i)
}

// persist runs the log's Ready cycle for its pending entries: hand out,
// write to ms, acknowledge.
func persist(t testing.TB, l *entryLog, ms *MemoryStorage) {
	t.Helper()
	ents := l.toPersist()
	l.markPersisting()
	if len(ents) == 0 {
		return
	}
	require.NoError(t, ms.Append(ents))
	l.markDurable(idOfEntry(&ents[len(ents)-1]))
}

// TestLogServesDurableEntriesFromMemory is the point of the window: once
// entries are durable, a leader's sends and the application's reads of them
// come from memory, not from Storage.
func TestLogServesDurableEntriesFromMemory(t *testing.T) {
	cs := &countingStorage{MemoryStorage: NewMemoryStorage()}
	l := openLog(cs, discardLogger, noLimit)
	for round := uint64(0); round < 100; round++ {
		ents := sized(1, 3*round+1, 3*round+3, 50)
		l.write(ents...)
		persist(t, l, cs.MemoryStorage)
		got, err := l.entriesFrom(ents[0].Index, noLimit)
		require.NoError(t, err)
		require.Equal(t, ents, got)
		l.raiseCommit(l.last())
		applied := l.toApply(false)
		require.Equal(t, ents, applied)
		l.markApplying(l.last(), encodedSizeOf(applied), false)
		l.markApplied(l.last(), encodedSizeOf(applied))
		for i := ents[0].Index; i <= l.last(); i++ {
			require.Equal(t, uint64(1), l.termOrZero(i))
		}
	}
	require.Zero(t, cs.entries, "Storage.Entries calls")
	require.Zero(t, cs.terms, "Storage.Term calls")
}

// TestLogReadsStorageBelowWindow covers the two reasons Storage is read: a
// restart (the window starts after what storage holds) and a window shrunk
// to its byte bound.
func TestLogReadsStorageBelowWindow(t *testing.T) {
	cs := &countingStorage{MemoryStorage: storageAt(t, 0, 0, sized(1, 1, 10, 10)...)}
	l := openLog(cs, discardLogger, noLimit)
	l.raiseCommit(10)
	require.Equal(t, sized(1, 1, 10, 10), l.toApply(false))
	require.Equal(t, 1, cs.entries, "after a restart the entries to apply come from storage")

	l.retainLimit = entryPayloadSize(4 * 10)
	l.write(sized(2, 11, 20, 10)...)
	require.Equal(t, uint64(11), l.win.start(), "entries not durable are kept whatever their size")
	persist(t, l, cs.MemoryStorage)
	require.Equal(t, uint64(21), l.win.start(), "past the bound only what is not durable stays")
	require.Zero(t, l.win.bytes)

	cs.entries = 0
	got, err := l.read(15, 21, noLimit)
	require.NoError(t, err)
	require.Equal(t, sized(2, 15, 20, 10), got)
	require.Equal(t, 1, cs.entries)
	require.Equal(t, uint64(2), l.termOrZero(20), "the window keeps the term of the entry before it")
}

// TestLogSeesCompactionBehindWindow checks that entries still in memory are
// reported compacted once the application compacts storage past them, as
// they would be without the window.
func TestLogSeesCompactionBehindWindow(t *testing.T) {
	ms := NewMemoryStorage()
	l := openLog(ms, discardLogger, noLimit)
	l.write(termRun(1, 1, 10)...)
	persist(t, l, ms)
	l.raiseCommit(10)
	require.Equal(t, uint64(1), l.win.start())

	require.NoError(t, ms.Compact(6))
	require.Equal(t, uint64(7), l.first())
	_, err := l.termAt(5)
	require.ErrorIs(t, err, ErrCompacted)
	term, err := l.termAt(6)
	require.NoError(t, err)
	require.Equal(t, uint64(1), term)
	_, err = l.read(3, 8, noLimit)
	require.ErrorIs(t, err, ErrCompacted)
	got, err := l.read(7, 11, noLimit)
	require.NoError(t, err)
	require.Equal(t, termRun(1, 7, 10), got)
}

// TestLogKeepsWhatFollowersNeed checks that growing the window leaves behind
// only entries nobody needs: not the next ones to apply, nor those a
// replicating follower may be sent again.
func TestLogKeepsWhatFollowersNeed(t *testing.T) {
	cs := &countingStorage{MemoryStorage: NewMemoryStorage()}
	l := openLog(cs, discardLogger, noLimit)
	floor := uint64(1)
	l.followerFloor = func() uint64 { return floor }
	for i := uint64(1); i <= 500; i++ {
		l.write(pb.Entry{Index: i, Term: 1})
		persist(t, l, cs.MemoryStorage)
		l.raiseCommit(i)
		l.markApplied(i, 0)
		if i%100 == 0 {
			floor = i - 50 // the slowest follower matched up to here
		}
	}
	_, err := l.entriesFrom(floor, noLimit)
	require.NoError(t, err)
	require.Zero(t, cs.entries, "the follower's entries came from memory")
	require.Greater(t, l.win.start(), uint64(1), "entries below every need were let go of")
	require.LessOrEqual(t, l.win.start(), floor)
}

// TestLogOverwriteBelowWindow has a new leader overwrite durable entries
// the window already let go of.
func TestLogOverwriteBelowWindow(t *testing.T) {
	ms := NewMemoryStorage()
	l := openLog(ms, discardLogger, noLimit)
	l.retainLimit = 0
	l.write(termRun(1, 1, 8)...)
	persist(t, l, ms)
	l.raiseCommit(3)
	require.Equal(t, uint64(9), l.win.start())

	last, ok := l.acceptAppend(logSlice{term: 2, prev: entryID{term: 1, index: 4}, entries: termRun(2, 5, 6)}, 6)
	require.True(t, ok)
	require.Equal(t, uint64(6), last)
	require.Equal(t, uint64(4), l.durable, "the replaced entries were durable; their replacements are not")
	require.Equal(t, termRun(2, 5, 6), l.toPersist())
	require.Equal(t, cat(termRun(1, 1, 4), termRun(2, 5, 6)), l.everything())
	persist(t, l, ms)
	require.Equal(t, cat(termRun(1, 1, 4), termRun(2, 5, 6)), storedEntries(t, ms))
}

// TestLogHandedOutSlicesStayIntact checks invariant 2 of window: whatever
// the log handed out (to persist, to apply, to send), and the entries of a
// leader's append it may have kept, never change, whatever the log does
// next.
func TestLogHandedOutSlicesStayIntact(t *testing.T) {
	ms := NewMemoryStorage()
	l := openLog(ms, discardLogger, noLimit)
	var held [][]pb.Entry
	var copies [][]pb.Entry
	keep := func(ents []pb.Entry) {
		if len(ents) == 0 {
			return
		}
		held = append(held, ents)
		copies = append(copies, deepCopy(ents))
	}
	rng := rand.New(rand.NewSource(5))
	term := uint64(1)
	for step := 0; step < 3000; step++ {
		switch op := rng.Intn(10); {
		case op < 3:
			l.write(termRun(term, l.last()+1, l.last()+1+uint64(rng.Intn(40)))...)
		case op < 5:
			// From a leader's message: the log may keep the array, and must
			// then never write into it.
			ents := termRun(term, l.last()+1, l.last()+1+uint64(rng.Intn(40)))
			_, ok := l.acceptAppend(logSlice{term: term, prev: l.lastID(), entries: ents}, l.committed)
			require.True(t, ok)
			keep(ents)
		case op < 6 && l.last() > l.committed:
			term++
			from := l.committed + 1 + uint64(rng.Int63n(int64(l.last()-l.committed)))
			l.write(termRun(term, from, from+uint64(rng.Intn(3)))...)
		case op < 8:
			keep(l.toPersist())
			persist(t, l, ms)
		default:
			l.raiseCommit(l.durable)
			ents := l.toApply(false)
			keep(ents)
			if n := len(ents); n > 0 {
				l.markApplying(ents[n-1].Index, 0, false)
				l.markApplied(ents[n-1].Index, 0)
			}
			if l.last() > 0 {
				sent, err := l.entriesFrom(max(l.first(), l.last()-5), noLimit)
				require.NoError(t, err)
				keep(sent)
			}
		}
	}
	for k := range held {
		require.Equal(t, copies[k], held[k], "slice %d changed", k)
	}
}

// TestLogWindowStaysBounded writes and persists many entries that nothing
// releases (the application applies none of them): the byte bound alone
// must keep the window, and the array behind it, small.
func TestLogWindowStaysBounded(t *testing.T) {
	ms := NewMemoryStorage()
	l := openLog(ms, discardLogger, noLimit)
	l.retainLimit = 1000
	for i := uint64(1); i <= 5000; i++ {
		l.write(sized(1, i, i, 100)...)
		if i%3 == 0 {
			persist(t, l, ms)
			require.LessOrEqual(t, l.win.bytes, l.retainLimit, "after entry %d", i)
		}
		require.LessOrEqual(t, l.win.arrayCap, 4*windowChunk, "after entry %d", i)
	}
	l.raiseCommit(l.durable)
	got, err := l.read(1, l.durable+1, noLimit)
	require.NoError(t, err)
	require.Equal(t, sized(1, 1, l.durable, 100), got)
}

// TestLogAdoptsLargeBatches checks when a follower keeps a leader's entries
// without copying them: only while everything in memory is durable, and
// then for a batch of at least a chunk even if older entries are still to
// be applied (those are read from storage instead).
func TestLogAdoptsLargeBatches(t *testing.T) {
	ms := NewMemoryStorage()
	l := openLog(ms, discardLogger, noLimit)
	small := termRun(1, 1, 3)
	_, ok := l.acceptAppend(logSlice{term: 1, entries: small}, 0)
	require.True(t, ok)
	require.Same(t, &small[0], &l.win.ents[0], "nothing needed: adopted")

	more := termRun(1, 4, 4)
	l.acceptAppend(logSlice{term: 1, prev: l.lastID(), entries: more}, 0)
	require.NotSame(t, &more[0], &l.win.ents[3], "entries not durable yet: copied")
	persist(t, l, ms)

	big := termRun(1, 5, 4+windowChunk)
	l.acceptAppend(logSlice{term: 1, prev: l.lastID(), entries: big}, 4)
	require.Same(t, &big[0], &l.win.ents[0], "a chunk: adopted although 1..4 are to be applied")
	require.Equal(t, termRun(1, 1, 4), l.toApply(false), "read back from storage")
}

// TestLogSameWithoutStorageBounds drives two logs alike, one over a
// MemoryStorage (read through StorageBounds) and one over a Storage that
// offers only the interface, through appends, conflicting appends,
// persistence, application and compactions behind their backs: both must
// answer alike.
func TestLogSameWithoutStorageBounds(t *testing.T) {
	type side struct {
		ms *MemoryStorage
		l  *entryLog
	}
	fast := side{ms: NewMemoryStorage()}
	fast.l = openLog(fast.ms, discardLogger, noLimit)
	slow := side{ms: NewMemoryStorage()}
	slow.l = openLog(struct{ Storage }{slow.ms}, discardLogger, noLimit)
	require.NotNil(t, fast.l.bounds)
	require.Nil(t, slow.l.bounds)
	// A small byte bound, so that reads below the window happen too.
	fast.l.retainLimit, slow.l.retainLimit = 300, 300
	sides := []side{fast, slow}

	rng := rand.New(rand.NewSource(17))
	term := uint64(1)
	for step := 0; step < 3000; step++ {
		l := fast.l
		op := rng.Intn(10)
		var from uint64
		if op == 0 && l.last() > l.committed {
			term++
			from = l.committed + 1 + uint64(rng.Int63n(int64(l.last()-l.committed)))
		}
		n := uint64(rng.Intn(5))
		size := rng.Intn(2) * 100
		compactTo := l.applied
		for _, s := range sides {
			switch {
			case from != 0:
				s.l.write(termRun(term, from, from+n)...)
			case op < 3:
				s.l.write(sized(term, s.l.last()+1, s.l.last()+1+n, size)...)
			case op < 6:
				persist(t, s.l, s.ms)
			case op < 8:
				s.l.raiseCommit(s.l.durable)
				if ents := s.l.toApply(false); len(ents) > 0 {
					s.l.markApplying(ents[len(ents)-1].Index, 0, false)
					s.l.markApplied(ents[len(ents)-1].Index, 0)
				}
			default:
				if first, _ := s.ms.FirstIndex(); compactTo >= first {
					require.NoError(t, s.ms.Compact(compactTo))
				}
			}
		}
		require.Equal(t, fast.l.first(), slow.l.first(), "step %d", step)
		require.Equal(t, fast.l.last(), slow.l.last(), "step %d", step)
		for i := fast.l.first() - 1; i <= fast.l.last()+1; i++ {
			ft, ferr := fast.l.termAt(i)
			st, serr := slow.l.termAt(i)
			require.Equal(t, ft, st, "step %d term(%d)", step, i)
			require.Equal(t, ferr, serr, "step %d term(%d)", step, i)
		}
		lo := fast.l.first() + uint64(rng.Intn(3))
		if lo <= fast.l.last() {
			budget := entryEncodingSize(rng.Intn(500))
			fr, ferr := fast.l.read(lo, fast.l.last()+1, budget)
			sr, serr := slow.l.read(lo, slow.l.last()+1, budget)
			require.Equal(t, ferr, serr, "step %d", step)
			require.Equal(t, fr, sr, "step %d", step)
		}
	}
}
