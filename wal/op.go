package wal

import (
	"fmt"

	pb "github.com/raftkit/raft/raftpb"
)

// op is one decoded record of a batch: the change it makes to the log.
// Recovery and the write path apply ops through the same code, so the state
// after a restart is the state before it.
type op struct {
	typ     recordType
	index   uint64 // recEntry
	term    uint64 // recEntry
	hs      pb.HardState
	snap    snapshotRecord
	compact compactRecord
	off     int64 // the record's offset in its segment
}

func decodeOp(typ recordType, payload []byte) (op, error) {
	o := op{typ: typ}
	var err error
	switch typ {
	case recEntry:
		o.index, o.term, err = entryID(payload)
	case recHardState:
		o.hs, err = decodeHardState(payload)
	case recSnapshot:
		o.snap, err = decodeSnapshotRecord(payload)
	case recCompact:
		o.compact, err = decodeCompactRecord(payload)
	default:
		err = fmt.Errorf("unexpected %v record in a batch", typ)
	}
	return o, err
}

// check reports whether o can follow the current state; a record that
// cannot means the log is inconsistent.
func (s *logState) check(o *op) error {
	switch o.typ {
	case recEntry:
		if o.index > s.lastIndex+1 {
			return fmt.Errorf("entry %d leaves a gap after the last index %d", o.index, s.lastIndex)
		}
		if o.index == 0 {
			return fmt.Errorf("entry with index 0")
		}
	case recSnapshot:
		if o.snap.ref.meta.Index <= s.snap.meta.Index {
			return fmt.Errorf("snapshot at %d is not newer than the snapshot at %d", o.snap.ref.meta.Index, s.snap.meta.Index)
		}
		if !o.snap.install && (o.snap.ref.meta.Index < s.compactIndex || o.snap.ref.meta.Index > s.lastIndex) {
			return fmt.Errorf("snapshot at %d is outside the log [%d, %d]", o.snap.ref.meta.Index, s.compactIndex, s.lastIndex)
		}
	case recCompact:
		if o.compact.index <= s.compactIndex || o.compact.index > s.lastIndex {
			return fmt.Errorf("compaction to %d is outside the log (%d, %d]", o.compact.index, s.compactIndex, s.lastIndex)
		}
	}
	return nil
}

// apply makes the change; check must have passed.
func (s *logState) apply(o *op, sg *segment) {
	switch o.typ {
	case recEntry:
		s.appendEntry(o.index, o.term, sg, o.off)
	case recHardState:
		s.hardState = o.hs
	case recSnapshot:
		switch {
		case o.snap.install:
			s.install(o.snap.ref)
		case o.snap.inline:
			s.snap, s.snapSeg, s.snapOff = o.snap.ref, sg, o.off
		default:
			s.snap, s.snapSeg = o.snap.ref, nil
		}
	case recCompact:
		s.compact(o.compact.index, o.compact.term)
	}
}
