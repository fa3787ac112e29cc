package raft

import (
	"sync"
	"testing"

	pb "github.com/raftkit/raft/raftpb"
)

// TestLastEntryTermIsNeverTorn has a writer keep replacing MemoryStorage's
// tail (every entry's term is its index times 7, so a last index paired
// with another entry's term shows) while a reader asks for the published
// last term: any answer given must be the term of the index asked for.
func TestLastEntryTermIsNeverTorn(t *testing.T) {
	ms := NewMemoryStorage()
	const rounds = 20000
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for k := 0; k < rounds; k++ {
			i := uint64(1 + k%5)
			if err := ms.Append([]pb.Entry{{Index: i, Term: 7 * i}}); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	answered := 0
	for k := 0; k < rounds; k++ {
		i := uint64(1 + k%5)
		if term, ok := ms.lastEntryTerm(i); ok {
			answered++
			if term != 7*i {
				t.Fatalf("lastEntryTerm(%d) = %d, want %d", i, term, 7*i)
			}
		}
	}
	wg.Wait()
	// Once quiet, the last entry is always answered, and matches Term.
	last, _ := ms.LastIndex()
	term, ok := ms.lastEntryTerm(last)
	want, err := ms.Term(last)
	if !ok || err != nil || term != want {
		t.Fatalf("quiet storage: lastEntryTerm(%d) = %d, %v; Term = %d, %v", last, term, ok, want, err)
	}
	if _, ok := ms.lastEntryTerm(last - 1); ok {
		t.Fatalf("lastEntryTerm answered for %d, which is not the last index %d", last-1, last)
	}
	t.Logf("%d of %d concurrent reads answered lock-free", answered, rounds)
}

// TestRaftLogTermFollowsStorageTail checks raftLog.term against
// MemoryStorage.Term after the application changes storage behind raft's
// back (append, truncate, compact, snapshot).
func TestRaftLogTermFollowsStorageTail(t *testing.T) {
	ms := NewMemoryStorage()
	l := newLog(ms, discardLogger)
	check := func(step string) {
		t.Helper()
		first, _ := ms.FirstIndex()
		last, _ := ms.LastIndex()
		for i := first - 1; i <= last+1; i++ {
			got, gerr := l.term(i)
			want, werr := ms.Term(i)
			if got != want || (gerr == nil) != (werr == nil) {
				t.Fatalf("%s: term(%d) = %d, %v; storage says %d, %v", step, i, got, gerr, want, werr)
			}
		}
	}
	ents := func(from, to, term uint64) []pb.Entry {
		var es []pb.Entry
		for i := from; i <= to; i++ {
			es = append(es, pb.Entry{Index: i, Term: term})
		}
		return es
	}
	check("empty")
	_ = ms.Append(ents(1, 10, 1))
	check("append")
	_ = ms.Append(ents(6, 8, 2))
	check("truncate")
	_ = ms.Compact(5)
	check("compact")
	_ = ms.ApplySnapshot(pb.Snapshot{Metadata: pb.SnapshotMetadata{Index: 20, Term: 4}})
	check("snapshot")
	_ = ms.Append(ents(21, 22, 5))
	check("append after snapshot")
}
