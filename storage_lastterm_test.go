package raft

import (
	"sync"
	"sync/atomic"
	"testing"

	pb "github.com/raftkit/raft/raftpb"
)

// TestLastEntryTermIsNeverTorn has a writer keep replacing MemoryStorage's
// tail (every entry's term is its index times 7, so a last index paired
// with another entry's term shows) while a reader takes LogBounds: every
// answer must pair the last index with its own term.
//
// The test asserts that it did work: LogBounds always answers (it retries
// a read that raced with a writer), and the writer does not stop before the
// reader has read minReads times and seen the last index change under it,
// so every run checks reads made while the tail was being replaced.
func TestLastEntryTermIsNeverTorn(t *testing.T) {
	ms := NewMemoryStorage()
	const (
		minWrites = 20000
		minReads  = 2000
	)
	var reads, distinct atomic.Int64
	var done atomic.Bool
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer done.Store(true)
		for k := 0; k < minWrites || reads.Load() < minReads || distinct.Load() < 2; k++ {
			i := uint64(1 + k%5)
			if err := ms.Append([]pb.Entry{{Index: i, Term: 7 * i}}); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	seen := map[uint64]bool{}
	for !done.Load() {
		first, last, lastTerm := ms.LogBounds()
		reads.Add(1)
		if first != 1 || lastTerm != 7*last {
			t.Fatalf("LogBounds = (%d, %d, %d): torn", first, last, lastTerm)
		}
		if !seen[last] {
			seen[last] = true
			distinct.Add(1)
		}
	}
	wg.Wait()
	if n := reads.Load(); n < minReads {
		t.Fatalf("only %d reads raced with the writer, want at least %d", n, minReads)
	}
	if len(seen) < 2 {
		t.Fatalf("the reader saw the last index take %d value(s): it never raced with the writer", len(seen))
	}
	// Once quiet, the answer is what the interface says.
	first, last, lastTerm := ms.LogBounds()
	f, _ := ms.FirstIndex()
	l, _ := ms.LastIndex()
	lt, _ := ms.Term(l)
	if first != f || last != l || lastTerm != lt {
		t.Fatalf("quiet storage: LogBounds = (%d, %d, %d), interface says (%d, %d, %d)", first, last, lastTerm, f, l, lt)
	}
	t.Logf("%d reads, %d distinct last indexes", reads.Load(), len(seen))
}
