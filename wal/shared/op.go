package shared

import (
	"fmt"

	pb "github.com/raftkit/raft/raftpb"
)

// op is one decoded record of a batch: the change it makes to one group.
// Recovery and the write path apply ops through the same code, so the state
// after a restart is the state before it.
type op struct {
	typ     recordType
	group   uint64
	index   uint64 // recEntry, recCompact
	term    uint64 // recEntry, recCompact
	hs      pb.HardState
	install bool     // recSnapshot: the snapshot replaced the log
	snap    *snapRef // recSnapshot; a pointer keeps the common ops small
	off     int64    // the record's offset in its segment
}

func decodeOp(typ recordType, payload []byte) (op, error) {
	r := reader{p: payload}
	o := op{typ: typ, group: r.u64()}
	switch typ {
	case recCreate, recRemove:
	case recEntry:
		o.index, o.term = r.u64(), r.u64()
		if t := r.u8(); !r.bad {
			if _, known := pb.EntryType_name[int32(t)]; !known {
				return op{}, errBadPayload
			}
		}
		r.p = nil // the data; checked when read
	case recHardState:
		o.hs = readHardState(&r)
	case recSnapshot:
		flag := r.u8()
		o.install = flag == 1
		ref := readSnapRef(&r)
		o.snap = &ref
		if flag > 1 || ref.empty() {
			r.bad = true
		}
	case recCompact:
		o.index, o.term = r.u64(), r.u64()
	default:
		return op{}, fmt.Errorf("unexpected %v record in a batch", typ)
	}
	return o, r.done()
}

// appendOp encodes o's record (for recEntry, with the entry's data).
func appendOp(dst []byte, o *op, e *pb.Entry) []byte {
	dst, start := beginFrame(dst)
	switch o.typ {
	case recCreate, recRemove:
		dst = putU64(dst, o.group)
	case recEntry:
		dst = appendEntryPayload(dst, o.group, e)
	case recHardState:
		dst = appendHardState(putU64(dst, o.group), o.hs)
	case recSnapshot:
		flag := byte(0)
		if o.install {
			flag = 1
		}
		dst = appendSnapRef(append(putU64(dst, o.group), flag), *o.snap)
	case recCompact:
		dst = putU64(putU64(putU64(dst, o.group), o.index), o.term)
	default:
		panic(fmt.Sprintf("shared wal: no encoding for a %v op", o.typ))
	}
	finishFrame(dst, start, o.typ)
	return dst
}

// groups is the set of live groups, by ID.
type groupSet map[uint64]*groupState

// check reports whether o can follow the current state of gs; a record that
// cannot means the log is inconsistent.
func (gs groupSet) check(o *op) error {
	g := gs[o.group]
	if o.typ == recCreate {
		if g != nil {
			return fmt.Errorf("group %d created twice", o.group)
		}
		return nil
	}
	if g == nil {
		return fmt.Errorf("%v record for group %d, which does not exist", o.typ, o.group)
	}
	switch o.typ {
	case recEntry:
		if o.index == 0 || o.index > g.lastIndex+1 {
			return fmt.Errorf("group %d: entry %d leaves a gap after the last index %d", o.group, o.index, g.lastIndex)
		}
	case recSnapshot:
		if o.snap.meta.Index <= g.snap.meta.Index {
			return fmt.Errorf("group %d: snapshot at %d is not newer than the one at %d", o.group, o.snap.meta.Index, g.snap.meta.Index)
		}
		if !o.install && (o.snap.meta.Index < g.compactIndex || o.snap.meta.Index > g.lastIndex) {
			return fmt.Errorf("group %d: snapshot at %d is outside the log [%d, %d]", o.group, o.snap.meta.Index, g.compactIndex, g.lastIndex)
		}
	case recCompact:
		if o.index <= g.compactIndex || o.index > g.lastIndex {
			return fmt.Errorf("group %d: compaction to %d is outside the log (%d, %d]", o.group, o.index, g.compactIndex, g.lastIndex)
		}
	}
	return nil
}

// apply makes the change o describes, found at segment seq; check must
// have passed. It returns the group a create made or a remove dropped.
func (gs groupSet) apply(o *op, seq uint32) *groupState {
	g := gs[o.group]
	switch o.typ {
	case recCreate:
		g = newGroupState(o.group)
		gs[o.group] = g
	case recRemove:
		g.removed = true
		delete(gs, o.group)
	case recEntry:
		g.appendEntry(o.index, o.term, entryLoc{seg: seq, off: uint32(o.off)})
	case recHardState:
		g.hardState = o.hs
	case recSnapshot:
		if o.install {
			g.install(*o.snap)
		} else {
			g.snap = *o.snap
		}
	case recCompact:
		g.compact(o.index, o.term)
	}
	return g
}
