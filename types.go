package raft

import (
	"fmt"

	pb "github.com/raftkit/raft/raftpb"
)

// logSlice is a run of entries as seen in the log of the leader of term.
//
// The leader's term matters because two slices from the same leader term
// never disagree on an index, while slices from different terms can agree
// on a prefix and then diverge for good.
//
// Invariants of a well-formed logSlice (check with valid when the slice
// comes from outside, e.g. from a message or a test):
//  1. entries[i].Index == prev.index+1+i (contiguous after prev);
//  2. prev.term <= entries[0].Term and terms never decrease along entries;
//  3. every entry's term is <= term (a leader holds nothing from the future).
type logSlice struct {
	term    uint64     // the term of the leader whose log holds entries
	prev    entryID    // the entry just before entries[0]
	entries []pb.Entry // in index order
}

// lastID identifies the slice's last entry, or prev if it is empty.
func (s logSlice) lastID() entryID {
	if len(s.entries) == 0 {
		return s.prev
	}
	return idOfEntry(&s.entries[len(s.entries)-1])
}

// endIndex is the index of the slice's last entry, or prev.index if the
// slice is empty.
func (s logSlice) endIndex() uint64 { return s.prev.index + uint64(len(s.entries)) }

// check reports the first broken invariant of s, or nil.
func (s logSlice) check() error {
	last := s.prev
	for i := range s.entries {
		cur := idOfEntry(&s.entries[i])
		switch {
		case cur.index != last.index+1:
			return fmt.Errorf("leader term %d: entry %+v does not follow %+v", s.term, cur, last)
		case cur.term < last.term:
			return fmt.Errorf("leader term %d: entry %+v has a lower term than %+v", s.term, cur, last)
		}
		last = cur
	}
	if last.term > s.term {
		return fmt.Errorf("leader term %d: entry %+v has a newer term", s.term, last)
	}
	return nil
}

// entryID names one log entry by its position and the term that created it.
// Raft's Log Matching property (thesis §3.5) makes the pair a unique name: at
// most one leader exists per term, and it proposes each index once.
type entryID struct {
	term  uint64
	index uint64
}

// idOfEntry returns the ID of e.
func idOfEntry(e *pb.Entry) entryID { return entryID{term: e.Term, index: e.Index} }
