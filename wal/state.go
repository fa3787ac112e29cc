package wal

import (
	"fmt"
	"sort"

	pb "github.com/raftkit/raft/raftpb"
)

// markEvery is the spacing of the sparse offsets kept per run: locating an
// entry on disk reads at most markEvery-1 entry records it does not need,
// and the index costs 8 bytes per markEvery entries.
const markEvery = 32

// run is a stretch of consecutive live entries [first, last] whose records
// lie in one segment in index order, with no other entry records between
// them (other kinds of records may be interleaved). A truncation or a
// segment rotation ends a run, because after either the next entry's record
// no longer follows the previous one's.
//
// seg == nil marks a phantom run: entries that recovery knows existed
// (from a segment header's checkpoint) but whose segment was deleted. A
// consistent log has no live phantom entries once recovery ends.
type run struct {
	first, last uint64
	seg         *segment
	// marks[k] is the segment offset of the record of entry first+k*markEvery.
	marks []int64
}

// termRun says that entries from index first on have term term, up to the
// next termRun.
type termRun struct{ first, term uint64 }

// logState is the in-memory index of the log: what recovery rebuilds by
// replaying records and what the write path keeps up to date by applying the
// same records. It holds positions and terms, never entry payloads.
//
// Invariants:
//  1. compactIndex <= lastIndex; entries (compactIndex, lastIndex] are live.
//  2. runs cover exactly the live entries and possibly some compacted ones
//     below compactIndex+1, in index order, without overlap.
//  3. terms[0].first <= compactIndex (after the first compaction or
//     snapshot, == compactIndex with term compactTerm), and terms covers up
//     to lastIndex.
type logState struct {
	compactIndex, compactTerm uint64
	lastIndex                 uint64
	hardState                 pb.HardState
	snap                      snapRef

	// snapSeg and snapOff locate the record holding the current
	// snapshot's data when it is inline (snapFlagInline); snapSeg is nil
	// when the data is in a snapshot file. The segment is kept while the
	// snapshot is current (cutObsolete).
	snapSeg *segment
	snapOff int64

	runs  []run
	terms []termRun
	// runOpen says the last run may be extended by the next entry in the
	// same segment: no truncation or rotation happened since it grew.
	runOpen bool
}

// fromCheckpoint is the state a segment header describes. Entries up to its
// last index lived in earlier segments, so they start as a phantom run.
func fromCheckpoint(cp checkpoint) logState {
	s := logState{
		compactIndex: cp.compactIndex,
		compactTerm:  cp.compactTerm,
		lastIndex:    cp.lastIndex,
		hardState:    cp.hardState,
		snap:         cp.snap,
		terms:        []termRun{{cp.compactIndex, cp.compactTerm}},
	}
	if cp.lastIndex > cp.compactIndex {
		s.runs = []run{{first: cp.compactIndex + 1, last: cp.lastIndex}}
	}
	return s
}

func (s *logState) checkpoint() checkpoint {
	return checkpoint{
		compactIndex: s.compactIndex,
		compactTerm:  s.compactTerm,
		lastIndex:    s.lastIndex,
		hardState:    s.hardState,
		snap:         s.snap,
	}
}

// term returns the term of entry i, which must be in [compactIndex, lastIndex].
func (s *logState) term(i uint64) uint64 {
	k := sort.Search(len(s.terms), func(k int) bool { return s.terms[k].first > i }) - 1
	if k < 0 || i < s.compactIndex || i > s.lastIndex {
		panic(fmt.Sprintf("wal: term of %d asked outside [%d, %d]", i, s.compactIndex, s.lastIndex))
	}
	return s.terms[k].term
}

// lastIsPhantom says the last entry's location (and so its term) is not
// known, which recovery has to take into account when the log grows past it.
func (s *logState) lastIsPhantom() bool {
	n := len(s.runs)
	return n > 0 && s.runs[n-1].seg == nil && s.runs[n-1].last == s.lastIndex
}

// appendEntry records entry (index, term) at off in seg, truncating any
// conflicting suffix first. The caller has checked that index <=
// lastIndex+1; entries at or below the compaction point are ignored, like
// MemoryStorage does.
func (s *logState) appendEntry(index, term uint64, seg *segment, off int64) {
	if index <= s.compactIndex {
		return
	}
	if index <= s.lastIndex {
		s.truncate(index - 1)
	}
	if n := len(s.terms); n == 0 || s.terms[n-1].term != term || s.lastIsPhantom() {
		s.terms = append(s.terms, termRun{index, term})
	}
	if n := len(s.runs); s.runOpen && n > 0 && s.runs[n-1].seg == seg {
		r := &s.runs[n-1]
		if (index-r.first)%markEvery == 0 {
			r.marks = append(r.marks, off)
		}
		r.last = index
	} else {
		s.runs = append(s.runs, run{first: index, last: index, seg: seg, marks: []int64{off}})
		s.runOpen = true
	}
	s.lastIndex = index
}

// truncate drops the entries after index i (i >= compactIndex).
func (s *logState) truncate(i uint64) {
	k := len(s.runs)
	for k > 0 && s.runs[k-1].first > i {
		k--
	}
	s.runs = s.runs[:k]
	if k > 0 {
		r := &s.runs[k-1]
		if r.last > i {
			r.last = i
			if r.seg != nil {
				r.marks = r.marks[:(i-r.first)/markEvery+1]
			}
		}
	}
	t := len(s.terms)
	for t > 1 && s.terms[t-1].first > i {
		t--
	}
	s.terms = s.terms[:t]
	s.lastIndex = i
	s.runOpen = false
}

// compact moves the compaction point to (index, term), index in
// (compactIndex, lastIndex].
func (s *logState) compact(index, term uint64) {
	k := 0
	for k < len(s.runs) && s.runs[k].last <= index {
		k++
	}
	if k == len(s.runs) {
		s.runOpen = false
	}
	s.runs = s.runs[k:]
	t := sort.Search(len(s.terms), func(t int) bool { return s.terms[t].first > index }) - 1
	if t < 0 {
		t = 0
	}
	s.terms = s.terms[t:]
	s.terms[0] = termRun{index, term}
	s.compactIndex, s.compactTerm = index, term
}

// install replaces the whole log by a snapshot, as MemoryStorage.ApplySnapshot does.
func (s *logState) install(ref snapRef) {
	s.compactIndex, s.compactTerm = ref.meta.Index, ref.meta.Term
	s.lastIndex = ref.meta.Index
	s.runs = nil
	s.terms = []termRun{{ref.meta.Index, ref.meta.Term}}
	s.runOpen = false
	s.snap = ref
	s.snapSeg = nil
}

// locate returns the run holding live entry i and the offset of a record at
// or before i's record in that run, with the index of the entry there.
func (s *logState) locate(i uint64) (r *run, off int64, at uint64) {
	k := sort.Search(len(s.runs), func(k int) bool { return s.runs[k].last >= i })
	if k == len(s.runs) || s.runs[k].first > i {
		panic(fmt.Sprintf("wal: live entry %d is in no run", i))
	}
	r = &s.runs[k]
	m := (i - r.first) / markEvery
	return r, r.marks[m], r.first + m*markEvery
}

// firstLiveSegment is the sequence number of the oldest segment that holds
// a live entry, or 0 when no entry is live.
func (s *logState) firstLiveSegment() uint64 {
	for _, r := range s.runs {
		if r.last > s.compactIndex && r.seg != nil {
			return r.seg.seq
		}
	}
	return 0
}

// missing reports live entries that recovery could not locate.
func (s *logState) missing() (first, last uint64, ok bool) {
	for _, r := range s.runs {
		if r.seg == nil && r.last > s.compactIndex {
			return max(r.first, s.compactIndex+1), r.last, true
		}
	}
	return 0, 0, false
}

// markCount is the number of offsets the index holds, for the memory bound.
func (s *logState) markCount() int {
	n := 0
	for _, r := range s.runs {
		n += len(r.marks)
	}
	return n
}
