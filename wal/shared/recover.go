package shared

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/raftkit/raft/wal"
)

// recover rebuilds every group from the directory; see Open.
func (w *WAL) recover() error {
	l, err := listDir(w.dir)
	if err != nil {
		return err
	}
	// Temporary files are writes a crash interrupted before their rename;
	// nothing refers to them.
	for _, path := range l.tmps {
		if err := os.Remove(path); err != nil {
			return fmt.Errorf("shared wal: removing leftover %s: %w", path, err)
		}
	}
	if len(l.segs) == 0 {
		if len(l.snaps) > 0 {
			return &CorruptionError{File: w.dir, Reason: "snapshot files but no log segments"}
		}
		sg, err := createSegment(w.dir, 1, w.headerRecord(1), w.preallocSize(), w.sync)
		if err != nil {
			return err
		}
		w.segs = []*segment{sg}
		return nil
	}
	for k, seq := range l.segs {
		if seq != l.segs[0]+uint64(k) {
			return &CorruptionError{File: w.dir, Reason: fmt.Sprintf("segment %s is missing", segmentName(l.segs[0]+uint64(k)))}
		}
	}
	for k, seq := range l.segs {
		if err := w.replaySegment(seq, k == 0, k == len(l.segs)-1); err != nil {
			return err
		}
	}
	return w.checkRecovered(l.snaps)
}

// checkRecovered checks that every live entry was found and every snapshot
// the log refers to exists, and deletes the snapshot files it does not
// refer to.
func (w *WAL) checkRecovered(snaps []snapName) error {
	for _, g := range w.groups {
		w.pin(g.firstSeg(), +1)
		if first := g.locFirst(); first > g.compactIndex+1 {
			return &CorruptionError{File: w.segs[0].path, Reason: fmt.Sprintf(
				"group %d: entries [%d, %d] were in segments that no longer exist", g.id, g.compactIndex+1, first-1)}
		}
		g.publishBounds()
		if !g.snap.empty() {
			if err := checkSnapshotFile(w.dir, g.id, g.snap); err != nil {
				return err
			}
		}
	}
	for _, n := range snaps {
		if g := w.groups[n.group]; g != nil && !g.snap.empty() && snapNameOf(g.id, g.snap.meta) == n {
			continue
		}
		if err := os.Remove(snapPath(w.dir, n)); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("shared wal: removing stale snapshot: %w", err)
		}
	}
	return nil
}

// replaySegment applies the records of segment seq and adds the segment to
// w.segs. The first segment's header is the starting state of every group;
// later headers must agree with the state replayed so far.
func (w *WAL) replaySegment(seq uint64, first, last bool) error {
	path := filepath.Join(w.dir, segmentName(seq))
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("shared wal: opening segment: %w", err)
	}
	sg := &segment{seq: seq, path: path, f: f}
	w.segs = append(w.segs, sg)
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("shared wal: reading segment: %w", err)
	}
	rp := replayer{groups: w.groups, sg: sg, data: data, last: last}
	if err := rp.header(first); err != nil {
		return err
	}
	end, err := rp.batches()
	if err != nil {
		return err
	}
	sg.size = end
	if last && !allZero(data[end:]) {
		return w.cutTornTail(sg)
	}
	return nil
}

// cutTornTail removes what follows the last complete batch of the active
// segment, so that leftovers of a torn batch cannot pass for records after
// new writes.
func (w *WAL) cutTornTail(sg *segment) error {
	if err := sg.f.Truncate(sg.size); err != nil {
		return fmt.Errorf("shared wal: truncating torn tail of %s: %w", sg.path, err)
	}
	if p := w.preallocSize(); p > sg.size {
		if err := wal.Preallocate(sg.f, p); err != nil {
			return fmt.Errorf("shared wal: preallocating %s: %w", sg.path, err)
		}
	}
	if err := w.sync.file(sg.f); err != nil {
		return fmt.Errorf("shared wal: syncing %s: %w", sg.path, err)
	}
	return nil
}

// replayer walks the records of one segment.
type replayer struct {
	groups groupSet
	sg     *segment
	data   []byte
	last   bool // the active segment: only there may a batch be torn
	pos    int  // end of the header
}

func (rp *replayer) corrupt(off int, format string, args ...any) error {
	return &CorruptionError{File: rp.sg.path, Offset: int64(off), Reason: fmt.Sprintf(format, args...)}
}

// header reads the segment header: the first segment's checkpoints become
// the groups; a later one's must match the groups replayed so far.
func (rp *replayer) header(first bool) error {
	typ, payload, n, err := decodeFrame(rp.data)
	if err != nil || typ != recSegmentHeader {
		return rp.corrupt(0, "bad segment header: %v", orType(err, typ))
	}
	h, err := decodeSegmentHeader(payload)
	if err != nil {
		return rp.corrupt(0, "bad segment header: %v", err)
	}
	if h.seq != rp.sg.seq {
		return rp.corrupt(0, "header names segment %d", h.seq)
	}
	rp.pos = n
	rp.sg.dataStart = int64(n)
	if first {
		for k := range h.groups {
			rp.groups[h.groups[k].id] = fromCheckpoint(&h.groups[k])
		}
		return nil
	}
	if len(h.groups) != len(rp.groups) {
		return rp.corrupt(0, "header has %d groups, the segments before it %d", len(h.groups), len(rp.groups))
	}
	for k := range h.groups {
		g := rp.groups[h.groups[k].id]
		if g == nil || !sameCheckpoint(h.groups[k], g.checkpoint()) {
			return rp.corrupt(0, "header checkpoint of group %d disagrees with the segments before it", h.groups[k].id)
		}
	}
	return nil
}

// batches replays the batches after the header and returns the end of the
// last complete one.
func (rp *replayer) batches() (int64, error) {
	batchStart := rp.pos
	var pending []op
	for off := rp.pos; off < len(rp.data); {
		typ, payload, n, err := decodeFrame(rp.data[off:])
		if err == errZeroFrame && rp.last && allZero(rp.data[off:]) {
			break // preallocated space: the end of the data
		}
		if err != nil {
			if !rp.last {
				return 0, rp.corrupt(off, "%v", err)
			}
			return rp.tornTail(batchStart, off, err)
		}
		if typ == recBatchEnd {
			b, err := decodeBatchEnd(payload)
			if err != nil || b.start != int64(batchStart) || int(b.count) != len(pending) {
				return 0, rp.corrupt(off, "batch end does not match its batch")
			}
			for k := range pending {
				if err := rp.groups.check(&pending[k]); err != nil {
					return 0, rp.corrupt(int(pending[k].off), "%v", err)
				}
				rp.groups.apply(&pending[k], uint32(rp.sg.seq))
			}
			pending = pending[:0]
			off += n
			batchStart = off
			continue
		}
		o, err := decodeOp(typ, payload)
		if err != nil {
			return 0, rp.corrupt(off, "%v record: %v", typ, err)
		}
		o.off = int64(off)
		pending = append(pending, o)
		off += n
	}
	if len(pending) > 0 && !rp.last {
		return 0, rp.corrupt(batchStart, "batch without an end in a sealed segment")
	}
	// An unfinished batch at the end of the active segment was cut short
	// by a crash before it could be acknowledged: none of its groups sees
	// any of it.
	return int64(batchStart), nil
}

// tornTail decides what a bad record at off in the active segment means. A
// crash during a write leaves a damaged final batch, after which nothing
// complete can follow; if a complete batch starting after the damaged one
// is found further on, the damage hit data written (and possibly
// acknowledged) before it, and recovery must not cut it away.
func (rp *replayer) tornTail(batchStart, off int, cause error) (int64, error) {
	end := len(rp.data)
	for end > off && rp.data[end-1] == 0 {
		end--
	}
	for q := off + 1; q < end; q++ {
		typ, payload, _, err := decodeFrame(rp.data[q:])
		if err != nil || typ != recBatchEnd {
			continue
		}
		if b, err := decodeBatchEnd(payload); err == nil && b.start > int64(batchStart) {
			return 0, rp.corrupt(off, "%v, and complete records follow at offset %d", cause, b.start)
		}
	}
	return int64(batchStart), nil
}

func orType(err error, typ recordType) any {
	if err != nil {
		return err
	}
	return typ
}

func sameCheckpoint(a, b groupCheckpoint) bool {
	return a.id == b.id && a.compactIndex == b.compactIndex && a.compactTerm == b.compactTerm &&
		a.lastIndex == b.lastIndex && a.hardState == b.hardState &&
		a.snap.dataCRC == b.snap.dataCRC && a.snap.dataLen == b.snap.dataLen &&
		(a.snap.empty() && b.snap.empty() || sameMetadata(a.snap.meta, b.snap.meta))
}
