package wal

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// recover rebuilds the state from the directory; see Open.
func (s *Storage) recover() error {
	seqs, snaps, tmps, err := listDir(s.dir)
	if err != nil {
		return err
	}
	// Temporary files are writes a crash interrupted before their rename,
	// or recycled segments' files; nothing refers to them. The latter are
	// taken back into the pool, up to its bound (recycle.go).
	for _, name := range tmps {
		if s.adoptRecycled(name) {
			continue
		}
		if err := os.Remove(filepath.Join(s.dir, name)); err != nil {
			return fmt.Errorf("wal: removing leftover %s: %w", name, err)
		}
	}
	if len(seqs) == 0 {
		if len(snaps) > 0 {
			return &CorruptionError{File: s.dir, Reason: "snapshot files but no log segments"}
		}
		sg, err := createSegment(s.dir, 1, checkpoint{}, s.preallocSize())
		if err != nil {
			return err
		}
		s.segs = []*segment{sg}
		s.st = fromCheckpoint(checkpoint{})
		return nil
	}
	for k, seq := range seqs {
		if seq != seqs[0]+uint64(k) {
			return &CorruptionError{File: s.dir, Reason: fmt.Sprintf("segment %s is missing", segmentName(seqs[0]+uint64(k)))}
		}
	}
	spare, err := s.spareCandidate(seqs)
	if err != nil {
		return err
	}
	if spare != 0 {
		seqs = seqs[:len(seqs)-1]
	}
	for k, seq := range seqs {
		if err := s.replaySegment(seq, k == 0, k == len(seqs)-1); err != nil {
			return err
		}
	}
	if spare != 0 {
		if err := s.dropUnusedSpare(spare); err != nil {
			return err
		}
	}
	if first, last, ok := s.st.missing(); ok {
		return &CorruptionError{File: s.segs[0].path, Reason: fmt.Sprintf(
			"entries [%d, %d] were in segments that no longer exist", first, last)}
	}
	if !s.st.snap.empty() {
		read := readSnapshotFile
		if s.st.snapSeg != nil {
			read = s.readInlineSnapshot
		}
		snap, err := read(s.dir, s.st.snap)
		if err != nil {
			return err
		}
		s.snapshot = snap
	}
	return s.removeStaleSnapshots(snaps)
}

// spareCandidate returns the last of seqs if it may be a spare segment a
// crash left behind (spare.go): there is a segment before it and it does
// not open with a segment header. It returns 0 otherwise.
func (s *Storage) spareCandidate(seqs []uint64) (uint64, error) {
	if len(seqs) < 2 {
		return 0, nil
	}
	seq := seqs[len(seqs)-1]
	path := filepath.Join(s.dir, segmentName(seq))
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("wal: opening segment: %w", err)
	}
	defer f.Close()
	buf := make([]byte, 64<<10) // a header is a few hundred bytes
	n, err := f.ReadAt(buf, 0)
	if err != nil && err != io.EOF {
		return 0, fmt.Errorf("wal: reading segment %s: %w", path, err)
	}
	typ, _, _, err := decodeFrame(buf[:n])
	if err == errShortFrame && n == len(buf) {
		return 0, nil // a header longer than buf: a real one, replay will tell
	}
	if err == nil && typ == recSegmentHeader {
		return 0, nil
	}
	return seq, nil
}

// dropUnusedSpare deletes segment seq, the last one, which holds no
// header, if it is what a crash can leave of a spare: the header rotation
// would write from the state replayed so far, torn (any of its bytes
// zero), then zeros up to spareClearSize at least (a recycled spare
// holds its earlier life's bytes past that), and no batch end of segment
// seq anywhere. A segment's first batch starts right after its header,
// within the zeros, and follows the header's sync, so a file that passes
// never held a batch. Anything else is damage to a segment that may hold
// acknowledged batches, and is reported. The deletion needs no directory
// sync: a spare that comes back after another crash is dropped again.
func (s *Storage) dropUnusedSpare(seq uint64) error {
	path := filepath.Join(s.dir, segmentName(seq))
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("wal: reading segment: %w", err)
	}
	hdr := segmentHeaderBytes(seq, s.st.checkpoint())
	// The first record after the header lies within the zeros checked
	// here, whatever the header's length (newSegment).
	clearEnd := min(len(data), max(len(hdr)+frameHeaderSize, spareClearSize))
	notSpare := func(off int) error {
		return &CorruptionError{File: path, Offset: int64(off), Reason: "bad segment header, and the file is not an unused spare segment"}
	}
	for k := range data[:clearEnd] {
		if data[k] != 0 && (k >= len(hdr) || data[k] != hdr[k]) {
			return notSpare(k)
		}
	}
	if b, ok := findBatchEnd(data, clearEnd, segmentSeed(seq), -1); ok {
		return notSpare(int(b.start))
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("wal: removing unused spare %s: %w", path, err)
	}
	s.droppedSpare = true
	return nil
}

// replaySegment applies the records of segment seq to s.st and adds the
// segment to s.segs. The first segment's header checkpoint is the starting
// state; later headers must agree with the state replayed so far.
func (s *Storage) replaySegment(seq uint64, first, last bool) error {
	path := filepath.Join(s.dir, segmentName(seq))
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("wal: opening segment: %w", err)
	}
	sg := &segment{seq: seq, path: path, f: f}
	s.segs = append(s.segs, sg)
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("wal: reading segment: %w", err)
	}
	rp := replayer{st: &s.st, sg: sg, data: data, last: last}
	end, err := rp.run(first)
	if err != nil {
		return err
	}
	sg.size = end
	if last && !allZero(data[end:]) {
		return s.cutTornTail(sg)
	}
	return nil
}

// cutTornTail removes what follows the last complete batch of the active
// segment, so that new records are not followed by leftovers of the torn
// batch, which could otherwise pass for records at the next recovery.
func (s *Storage) cutTornTail(sg *segment) error {
	if err := sg.f.Truncate(sg.size); err != nil {
		return fmt.Errorf("wal: truncating torn tail of %s: %w", sg.path, err)
	}
	if p := s.preallocSize(); p > sg.size {
		if err := preallocate(sg.f, p); err != nil {
			return fmt.Errorf("wal: preallocating %s: %w", sg.path, err)
		}
	}
	if err := sg.f.Sync(); err != nil {
		return fmt.Errorf("wal: syncing %s: %w", sg.path, err)
	}
	return nil
}

// removeStaleSnapshots deletes snapshot files other than the current one:
// all of them when the current snapshot is inline (a file of its name is
// the leftover of a file write a crash interrupted before its record).
func (s *Storage) removeStaleSnapshots(names []snapName) error {
	current := snapNameOf(s.st.snap.meta)
	for _, n := range names {
		if s.st.snapSeg == nil && !s.st.snap.empty() && n == current {
			continue
		}
		if err := os.Remove(filepath.Join(s.dir, n.String())); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("wal: removing stale snapshot: %w", err)
		}
	}
	return nil
}

// replayer walks the records of one segment.
type replayer struct {
	st   *logState
	sg   *segment
	data []byte
	last bool // the active segment: a torn tail is possible here only
}

func (rp *replayer) corrupt(off int, format string, args ...any) error {
	return &CorruptionError{File: rp.sg.path, Offset: int64(off), Reason: fmt.Sprintf(format, args...)}
}

// run replays the segment and returns the end of its last complete batch.
func (rp *replayer) run(first bool) (int64, error) {
	typ, payload, n, err := decodeFrame(rp.data)
	if err != nil || typ != recSegmentHeader {
		return 0, rp.corrupt(0, "bad segment header: %v", orType(err, typ))
	}
	h, err := decodeSegmentHeader(payload)
	if err != nil {
		return 0, rp.corrupt(0, "bad segment header: %v", err)
	}
	if h.seq != rp.sg.seq {
		return 0, rp.corrupt(0, "header names segment %d", h.seq)
	}
	if first {
		*rp.st = fromCheckpoint(h.cp)
	} else if !sameCheckpoint(h.cp, rp.st.checkpoint()) {
		return 0, rp.corrupt(0, "header checkpoint disagrees with the segments before it")
	}
	rp.st.runOpen = false
	rp.sg.dataStart = int64(n)

	batchStart := n
	seed := segmentSeed(rp.sg.seq)
	var pending []op
	for off := n; off < len(rp.data); {
		typ, payload, n, err := decodeSeeded(rp.data[off:], seed)
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
				if err := rp.st.check(&pending[k]); err != nil {
					return 0, rp.corrupt(int(pending[k].off), "%v", err)
				}
				rp.st.apply(&pending[k], rp.sg)
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
	// by a crash before it could be acknowledged.
	return int64(batchStart), nil
}

// tornTail decides what a bad record at off in the active segment means.
// A crash during a write leaves a damaged final batch, after which nothing
// complete can follow; so if a complete batch starting after the damaged
// one is found further on, the damage hit data that had been written (and
// possibly acknowledged) before it, and recovery must not cut it away.
// Batch ends of a recycled file's earlier life do not count: they do not
// decode under this segment's seed.
func (rp *replayer) tornTail(batchStart, off int, cause error) (int64, error) {
	if b, ok := findBatchEnd(rp.data, off+1, segmentSeed(rp.sg.seq), int64(batchStart)); ok {
		return 0, rp.corrupt(off, "%v, and complete records follow at offset %d", cause, b.start)
	}
	return int64(batchStart), nil
}

// findBatchEnd looks in data from offset from on for a batch-end record
// checksummed from seed that closes a batch starting after after. Only
// the bytes that must hold a batch end's length and type are looked at
// everywhere, so a scan over a whole recycled segment costs one pass.
func findBatchEnd(data []byte, from int, seed uint32, after int64) (batchEndRecord, bool) {
	const size = batchEndSize
	for q := from; q+size <= len(data); q++ {
		if data[q+4] != byte(recBatchEnd) || binary.LittleEndian.Uint32(data[q:]) != size-frameHeaderSize {
			continue
		}
		typ, payload, _, err := decodeSeeded(data[q:q+size], seed)
		if err != nil || typ != recBatchEnd {
			continue
		}
		if b, err := decodeBatchEnd(payload); err == nil && b.start > after {
			return b, true
		}
	}
	return batchEndRecord{}, false
}

func orType(err error, typ recordType) any {
	if err != nil {
		return err
	}
	return typ
}

func sameCheckpoint(a, b checkpoint) bool {
	return a.compactIndex == b.compactIndex && a.compactTerm == b.compactTerm &&
		a.lastIndex == b.lastIndex && a.hardState == b.hardState &&
		a.snap.dataCRC == b.snap.dataCRC && a.snap.dataLen == b.snap.dataLen &&
		sameMetadata(a.snap.meta, b.snap.meta)
}
