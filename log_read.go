package raft

import (
	"errors"
	"fmt"

	pb "github.com/raftkit/raft/raftpb"
)

// read returns the entries of [lo, hi), at most maxSize bytes' worth but at
// least one entry if the range is not empty. Entries below the window come
// from storage, the rest from memory. lo below first() yields ErrCompacted;
// a range not within the log is a caller bug and panics. The caller may
// append to the result but must not modify the entries in it.
func (l *entryLog) read(lo, hi uint64, maxSize entryEncodingSize) ([]pb.Entry, error) {
	if err := l.checkRange(lo, hi); err != nil || lo == hi {
		return nil, err
	}
	start := l.win.start()
	if lo >= start {
		ents := l.win.span(lo, hi)
		if fitsWhole(ents, maxSize) {
			return ents, nil
		}
		return prefixWithin(ents, maxSize), nil
	}
	storedHi := min(hi, start)
	stored, err := l.readStorage(lo, storedHi, maxSize)
	if err != nil {
		return nil, err
	}
	// Storage returning less than asked means the budget ran out there.
	if hi <= start || uint64(len(stored)) < storedHi-lo {
		return stored, nil
	}
	used := encodedSizeOf(stored)
	if used >= maxSize {
		return stored, nil
	}
	// Unlike the first entry of the result, entries from memory are only
	// added while they fit.
	tail := l.win.span(start, hi)
	tail = tail[:fittingPrefix(tail, maxSize-used)]
	return joinEntries(stored, tail), nil
}

// maxEntryOverhead bounds what an entry's encoding adds to its payload:
// three tagged varints of at most ten bytes each, and the payload's tag and
// length varint.
const maxEntryOverhead = 3*(1+10) + 1 + 10

// fitsWhole reports, without encoding sizes, that all of ents surely fits
// in budget: the common case of a budget far above a batch's size, where
// prefixWithin would compute every entry's encoded size to cut nothing.
// False means "maybe not" (prefixWithin decides).
func fitsWhole(ents []pb.Entry, budget entryEncodingSize) bool {
	if budget == noLimit {
		return true
	}
	total := entryEncodingSize(len(ents)) * maxEntryOverhead
	for i := range ents {
		if total > budget {
			return false
		}
		total += entryEncodingSize(len(ents[i].Data))
	}
	return total <= budget
}

// readStorage reads [lo, hi) from storage, which the log expects to hold it
// in full. ErrCompacted (a compaction racing with the caller) is returned; a
// missing entry in the middle of the log, or any other storage failure,
// leaves the log unusable and panics.
func (l *entryLog) readStorage(lo, hi uint64, maxSize entryEncodingSize) ([]pb.Entry, error) {
	ents, err := l.storage.Entries(lo, hi, uint64(maxSize))
	switch {
	case err == nil:
		return ents, nil
	case errors.Is(err, ErrCompacted):
		return nil, err
	case errors.Is(err, ErrUnavailable):
		panic(fmt.Sprintf("raft log: entries [%d,%d) are unavailable from storage", lo, hi))
	}
	panic(fmt.Errorf("raft: reading entries [%d,%d) from storage: %w", lo, hi, err))
}

// checkRange returns ErrCompacted when lo is below first(), and panics
// unless lo <= hi <= last()+1.
func (l *entryLog) checkRange(lo, hi uint64) error {
	if lo > hi {
		panic(fmt.Sprintf("raft log: invalid range, lo %d > hi %d", lo, hi))
	}
	first := l.first()
	if lo < first {
		return ErrCompacted
	}
	if last := l.last(); hi > last+1 {
		panic(fmt.Sprintf("raft log: range [%d,%d) out of bound [%d,%d]", lo, hi, first, last))
	}
	return nil
}

// entriesFrom returns the entries from index i to the end of the log, at
// most maxSize bytes' worth (but at least one entry).
func (l *entryLog) entriesFrom(i uint64, maxSize entryEncodingSize) ([]pb.Entry, error) {
	last := l.last()
	if i > last {
		return nil, nil
	}
	return l.read(i, last+1, maxSize)
}

// everything returns every entry the log holds.
func (l *entryLog) everything() []pb.Entry {
	for {
		ents, err := l.entriesFrom(l.first(), noLimit)
		if err == nil {
			return ents
		}
		// A compaction may have raced with reading the first index; retry.
		if !errors.Is(err, ErrCompacted) {
			panic(err)
		}
	}
}

// pages passes the entries of [lo, hi) to visit in consecutive pages of at
// most pageSize bytes (a single larger entry makes a page of its own). It
// stops at the first error, from reading the log or from visit; visit can
// return an error of its own to end early. All of [lo, hi) must be in the
// log, or pages eventually fails.
func (l *entryLog) pages(lo, hi uint64, pageSize entryEncodingSize, visit func([]pb.Entry) error) error {
	for next := lo; next < hi; {
		page, err := l.read(next, hi, pageSize)
		switch {
		case err != nil:
			return err
		case len(page) == 0:
			// Would loop forever; read promises at least one entry.
			return fmt.Errorf("got 0 entries in [%d, %d)", next, hi)
		}
		if err = visit(page); err != nil {
			return err
		}
		next += uint64(len(page))
	}
	return nil
}
