package wal

// publishBounds stores the current bounds for LogBounds. Callers hold mu
// for writing (or own s exclusively, as Open does).
func (s *Storage) publishBounds() {
	s.bounds.Store(s.st.compactIndex+1, s.st.lastIndex, s.st.term(s.st.lastIndex))
}

// LogBounds implements raft.StorageBounds: FirstIndex, LastIndex and the
// last entry's term as of one moment, without taking the lock. After Close
// it keeps answering the last bounds.
func (s *Storage) LogBounds() (first, last, lastTerm uint64) { return s.bounds.Load() }
