package wal

import (
	"runtime"
	"sync/atomic"
)

// publishedBounds holds the log's first and last index and the last entry's
// term for readers that must not take the lock (raft.StorageBounds). A
// writer, serialized by Storage.mu, makes version odd while it stores the
// three values; a reader that sees the same even version before and after
// loading them got values that held together.
type publishedBounds struct {
	version, first, last, lastTerm atomic.Uint64
}

func (p *publishedBounds) store(first, last, lastTerm uint64) {
	p.version.Add(1)
	p.first.Store(first)
	p.last.Store(last)
	p.lastTerm.Store(lastTerm)
	p.version.Add(1)
}

func (p *publishedBounds) load() (first, last, lastTerm uint64) {
	for spins := 0; ; spins++ {
		v := p.version.Load()
		if v&1 == 0 {
			first, last, lastTerm = p.first.Load(), p.last.Load(), p.lastTerm.Load()
			if p.version.Load() == v {
				return first, last, lastTerm
			}
		}
		if spins%16 == 15 {
			runtime.Gosched() // the writer may have been descheduled mid-store
		}
	}
}

// publishBounds stores the current bounds for LogBounds. Callers hold mu
// for writing (or own s exclusively, as Open does).
func (s *Storage) publishBounds() {
	s.bounds.store(s.st.compactIndex+1, s.st.lastIndex, s.st.term(s.st.lastIndex))
}

// LogBounds implements raft.StorageBounds: FirstIndex, LastIndex and the
// last entry's term as of one moment, without taking the lock. After Close
// it keeps answering the last bounds.
func (s *Storage) LogBounds() (first, last, lastTerm uint64) { return s.bounds.load() }
