package wal

import (
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"

	"github.com/raftkit/raft"
	pb "github.com/raftkit/raft/raftpb"
	"github.com/raftkit/raft/wal/internal/frame"
)

// Save persists what a Ready hands the application: the snapshot (if not
// empty) replaces the log, then the entries are appended (replacing any
// conflicting suffix), then the HardState (if not empty) is recorded, all in
// one batch that recovery applies entirely or not at all.
//
// Save returns once the batch is durable if raft.MustSync says it must be
// (new entries, a new term or vote) or a snapshot was installed; a batch
// that only moves the commit index is written but not waited for, since the
// commit index can be learned again. Concurrent and back-to-back Saves share
// fsyncs (group commit).
func (s *Storage) Save(hs pb.HardState, ents []pb.Entry, snap pb.Snapshot) error {
	end, mustSync, err := s.save(hs, ents, snap)
	if err != nil || !mustSync {
		return err
	}
	if !raft.IsEmptySnap(snap) {
		// Syncs, then frees the segments and the snapshot file the new
		// snapshot made obsolete.
		return s.removeObsolete()
	}
	return s.waitDurable(end)
}

// Append appends entries durably, replacing any entries at the same or
// later indexes. Entries at or below the compaction point are ignored. The
// entries must be contiguous and must not leave a gap after LastIndex; they
// must not be modified afterwards (they are kept in the cache and handed to
// readers).
func (s *Storage) Append(ents []pb.Entry) error {
	return s.Save(pb.HardState{}, ents, pb.Snapshot{})
}

// SetHardState records hs; it waits for durability only when the term or
// the vote changed (raft.MustSync).
func (s *Storage) SetHardState(hs pb.HardState) error {
	return s.Save(hs, nil, pb.Snapshot{})
}

// ApplySnapshot replaces the log by snap, as MemoryStorage.ApplySnapshot
// does: the snapshot is stored in its own file and the log becomes empty
// with its compaction point at the snapshot. A snapshot not newer than the
// current one is refused with raft.ErrSnapOutOfDate.
func (s *Storage) ApplySnapshot(snap pb.Snapshot) error {
	if raft.IsEmptySnap(snap) {
		return raft.ErrSnapOutOfDate
	}
	return s.Save(pb.HardState{}, nil, snap)
}

// Sync waits until everything written so far is durable.
func (s *Storage) Sync() error {
	s.smu.Lock()
	end := s.wrote
	s.smu.Unlock()
	return s.waitDurable(end)
}

func (s *Storage) save(hs pb.HardState, ents []pb.Entry, snap pb.Snapshot) (end uint64, mustSync bool, err error) {
	if !raft.IsEmptySnap(snap) {
		s.snapMu.Lock()
		defer s.snapMu.Unlock()
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if err := s.writable(); err != nil {
		return 0, false, err
	}
	prev := s.st.hardState
	compacted, last := s.st.compactIndex, s.st.lastIndex
	install := !raft.IsEmptySnap(snap)
	if install {
		if snap.Metadata.Index <= s.st.snap.meta.Index {
			return 0, false, raft.ErrSnapOutOfDate
		}
		compacted, last = snap.Metadata.Index, snap.Metadata.Index
	}
	ents, err = liveSuffix(ents, compacted, last)
	if err != nil {
		return 0, false, err
	}
	hsChanged := !raft.IsEmptyHardState(hs) && hs != prev
	if !install && len(ents) == 0 && !hsChanged {
		return 0, false, nil
	}
	b := s.newBatch()
	if install {
		ref, err := writeSnapshotFile(s.dir, &snap)
		if err != nil {
			return 0, false, err
		}
		b.addSnapshot(snapshotRecord{install: true, ref: ref})
	}
	for k := range ents {
		b.addEntry(&ents[k])
	}
	if hsChanged {
		b.addHardState(hs)
	}
	end, err = s.commit(b, func() {
		if install {
			s.snapshot = snap
			s.cache.reset()
		}
		s.cache.add(ents)
	})
	if hsChanged {
		mustSync = raft.MustSync(hs, prev, len(ents))
	}
	return end, mustSync || install || len(ents) > 0, err
}

// liveSuffix checks ents for Append and drops those at or below the
// compaction point.
func liveSuffix(ents []pb.Entry, compacted, last uint64) ([]pb.Entry, error) {
	for k := 1; k < len(ents); k++ {
		if ents[k].Index != ents[k-1].Index+1 {
			return nil, fmt.Errorf("wal: entries are not contiguous: index %d follows %d", ents[k].Index, ents[k-1].Index)
		}
	}
	for k := range ents {
		if size := len(ents[k].Data) + entryHeaderSize; uint64(size) > maxPayload {
			return nil, fmt.Errorf("wal: entry %d of %d bytes exceeds the record limit", ents[k].Index, size)
		}
	}
	if len(ents) == 0 || ents[len(ents)-1].Index <= compacted {
		return nil, nil
	}
	if ents[0].Index <= compacted {
		ents = ents[compacted+1-ents[0].Index:]
	}
	if ents[0].Index > last+1 {
		return nil, fmt.Errorf("wal: entries start at index %d, leaving a gap after the last index %d", ents[0].Index, last)
	}
	return ents, nil
}

// Compact discards the entries up to and including index, which becomes
// the compaction point. The segments that held only discarded entries are
// deleted in the background once the compaction is durable (Close finishes
// a pending deletion), so that Compact costs the caller, typically the
// Ready loop, one buffered write. Compacting at or below the current point
// returns raft.ErrCompacted; past the last index, an error. The
// application must not compact past what it has applied (and snapshotted).
func (s *Storage) Compact(index uint64) error {
	if err := s.compact(index); err != nil {
		return err
	}
	s.removeObsoleteLater()
	return nil
}

func (s *Storage) compact(index uint64) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if err := s.writable(); err != nil {
		return err
	}
	switch {
	case index <= s.st.compactIndex:
		return raft.ErrCompacted
	case index > s.st.lastIndex:
		return fmt.Errorf("wal: compact index %d is past the last index %d", index, s.st.lastIndex)
	}
	b := s.newBatch()
	b.addCompact(compactRecord{index: index, term: s.st.term(index)})
	_, err := s.commit(b, func() { s.cache.compact(index) })
	return err
}

// CreateSnapshot records a snapshot of the state machine as of entry i
// with the given data, like MemoryStorage.CreateSnapshot: cs replaces the
// snapshot's ConfState unless nil. The log is not compacted (see Compact).
// It returns once the snapshot is durable; the snapshot file it replaces
// is deleted in the background, as Compact's segments are. An i not above
// the current snapshot yields raft.ErrSnapOutOfDate, one below the
// compaction point raft.ErrCompacted, one past the last index an error.
func (s *Storage) CreateSnapshot(i uint64, cs *pb.ConfState, data []byte) (pb.Snapshot, error) {
	snap, end, err := s.createSnapshot(i, cs, data)
	if err != nil {
		return pb.Snapshot{}, err
	}
	if err := s.waitDurable(end); err != nil {
		return pb.Snapshot{}, err
	}
	s.removeObsoleteLater()
	return snap, nil
}

// createSnapshot writes the snapshot file without holding wmu (a file
// write, an fsync, a rename and a directory fsync: milliseconds that
// appends, the Ready loop's and the append thread's, would otherwise wait
// out), then records it under wmu once it has checked that the log still
// holds entry i as it was: Compact and Append may have run meanwhile.
// snapMu keeps other snapshots from being recorded in between.
func (s *Storage) createSnapshot(i uint64, cs *pb.ConfState, data []byte) (pb.Snapshot, uint64, error) {
	if len(data) <= s.inlineLimit {
		return s.createInlineSnapshot(i, cs, data)
	}
	s.snapMu.Lock()
	defer s.snapMu.Unlock()
	snap, err := s.planSnapshot(i, cs, data)
	if err != nil {
		return pb.Snapshot{}, 0, err
	}
	if s.beforeSnapshotFile != nil {
		s.beforeSnapshotFile()
	}
	ref, err := writeSnapshotFile(s.dir, &snap)
	if err != nil {
		return pb.Snapshot{}, 0, err
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	err = s.checkSnapshotPoint(i)
	if err == nil && s.st.term(i) != snap.Metadata.Term {
		err = fmt.Errorf("wal: entry %d changed term while its snapshot was written", i)
	}
	if err != nil {
		// Newer than the recorded snapshot, so the remover leaves it.
		os.Remove(filepath.Join(s.dir, snapNameOf(snap.Metadata).String()))
		return pb.Snapshot{}, 0, err
	}
	b := s.newBatch()
	b.addSnapshot(snapshotRecord{ref: ref})
	end, err := s.commit(b, func() { s.snapshot = snap })
	if err != nil {
		return pb.Snapshot{}, 0, err
	}
	return snap, end, nil
}

// inlineSnapshotLimit is the default Storage.inlineLimit: snapshots of
// CreateSnapshot with at most this much data are kept in their log record
// instead of a file of their own. Such a record costs a write into the
// active segment and shares the next group commit, where a file costs a
// write, an fsync, a rename and a directory fsync before the record is
// even written; in exchange the segment holding the record is kept until
// a newer snapshot replaces it.
const inlineSnapshotLimit = 64 << 10

// createInlineSnapshot is createSnapshot for a snapshot whose data goes in
// its log record: one batch under wmu.
func (s *Storage) createInlineSnapshot(i uint64, cs *pb.ConfState, data []byte) (pb.Snapshot, uint64, error) {
	s.snapMu.Lock()
	defer s.snapMu.Unlock()
	s.wmu.Lock()
	defer s.wmu.Unlock()
	snap, err := s.planSnapshotLocked(i, cs, data)
	if err != nil {
		return pb.Snapshot{}, 0, err
	}
	ref := snapRef{meta: snap.Metadata, dataCRC: crc32.Checksum(data, castagnoli), dataLen: uint64(len(data))}
	b := s.newBatch()
	b.addSnapshot(snapshotRecord{inline: true, ref: ref, data: data})
	end, err := s.commit(b, func() { s.snapshot = snap })
	// The scratch op must not keep the caller's data alive.
	b.ops[len(b.ops)-1].snap.data = nil
	if err != nil {
		return pb.Snapshot{}, 0, err
	}
	return snap, end, nil
}

// planSnapshot checks i and returns the snapshot to write for it.
func (s *Storage) planSnapshot(i uint64, cs *pb.ConfState, data []byte) (pb.Snapshot, error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.planSnapshotLocked(i, cs, data)
}

// planSnapshotLocked is planSnapshot for callers holding wmu.
func (s *Storage) planSnapshotLocked(i uint64, cs *pb.ConfState, data []byte) (pb.Snapshot, error) {
	if err := s.checkSnapshotPoint(i); err != nil {
		return pb.Snapshot{}, err
	}
	snap := pb.Snapshot{Data: data, Metadata: pb.SnapshotMetadata{
		Index:     i,
		Term:      s.st.term(i),
		ConfState: s.snapshot.Metadata.ConfState,
	}}
	if cs != nil {
		snap.Metadata.ConfState = *cs
	}
	return snap, nil
}

// checkSnapshotPoint says whether a snapshot at i may be recorded now.
// Callers hold wmu.
func (s *Storage) checkSnapshotPoint(i uint64) error {
	if err := s.writable(); err != nil {
		return err
	}
	switch {
	case i <= s.st.snap.meta.Index:
		return raft.ErrSnapOutOfDate
	case i < s.st.compactIndex:
		return raft.ErrCompacted
	case i > s.st.lastIndex:
		return fmt.Errorf("wal: snapshot index %d is past the last index %d", i, s.st.lastIndex)
	}
	return nil
}

// writable says whether writes may proceed. Callers hold wmu.
func (s *Storage) writable() error {
	if s.closed {
		return ErrClosed
	}
	return s.failure()
}

// batch collects the framed records of one write and the ops they stand
// for; op offsets are relative to the batch until commit places it.
type batch struct {
	buf  []byte
	ops  []op
	seed uint32 // the checksum seed of the segment the records are framed for
}

// newBatch starts a batch in the storage's scratch buffers, which commit
// takes back (grown) so that steady-state writes allocate nothing. Callers
// hold wmu, and build and commit one batch at a time.
// The records are checksummed for the active segment; commit frames them
// again if it starts a new one.
func (s *Storage) newBatch() *batch {
	return &batch{buf: s.buf[:0], ops: s.ops[:0], seed: segmentSeed(s.active().seq)}
}

// reseal checksums the batch's records again for the segment of seed.
func (b *batch) reseal(seed uint32) {
	for off := 0; off < len(b.buf); {
		off += frame.Reseal(b.buf[off:], seed)
	}
	b.seed = seed
}

// begin reserves a frame header; finish fills it in once the payload
// follows. Framing in place saves copying entry data twice.
func (b *batch) begin(o op) int {
	o.off = int64(len(b.buf))
	b.ops = append(b.ops, o)
	var start int
	b.buf, start = frame.Begin(b.buf)
	return start
}

func (b *batch) finish(start int, typ recordType) {
	frame.FinishSeeded(b.buf, start, uint8(typ), b.seed)
}

func (b *batch) addEntry(e *pb.Entry) {
	start := b.begin(op{typ: recEntry, index: e.Index, term: e.Term})
	b.buf = appendEntryPayload(b.buf, e)
	b.finish(start, recEntry)
}

func (b *batch) addHardState(hs pb.HardState) {
	start := b.begin(op{typ: recHardState, hs: hs})
	b.buf = appendHardStatePayload(b.buf, hs)
	b.finish(start, recHardState)
}

func (b *batch) addSnapshot(r snapshotRecord) {
	start := b.begin(op{typ: recSnapshot, snap: r})
	b.buf = appendSnapshotPayload(b.buf, r)
	b.finish(start, recSnapshot)
}

func (b *batch) addCompact(c compactRecord) {
	start := b.begin(op{typ: recCompact, compact: c})
	b.buf = appendCompactPayload(b.buf, c)
	b.finish(start, recCompact)
}

// batchEndSize is the framed size of a recBatchEnd record.
const batchEndSize = frameHeaderSize + 12

// commit writes b at the end of the active segment (after starting a new
// segment if b would overflow it), then applies its ops and publish to the
// in-memory state. It returns the write's end position for waitDurable.
// Callers hold wmu.
func (s *Storage) commit(b *batch, publish func()) (uint64, error) {
	sg := s.active()
	if sg.size > sg.dataStart && sg.size+int64(len(b.buf)+batchEndSize) > s.opts.SegmentSize {
		if err := s.rotate(); err != nil {
			return 0, err
		}
		sg = s.active()
	}
	if seed := segmentSeed(sg.seq); seed != b.seed {
		b.reseal(seed)
	}
	start := sg.size
	var tail [12]byte // the batch-end payload, on the stack
	b.buf = appendSeeded(b.buf, recBatchEnd, appendBatchEndPayload(tail[:0], batchEndRecord{start: start, count: uint32(len(b.ops))}), b.seed)
	s.buf = b.buf // keep the grown scratch buffers
	s.ops = b.ops
	s.claimWrite(start + int64(len(b.buf)))
	if _, err := sg.f.WriteAt(b.buf, start); err != nil {
		return 0, s.fail(fmt.Errorf("wal: writing %s: %w", sg.path, err))
	}
	s.mu.Lock()
	for k := range b.ops {
		o := &b.ops[k]
		o.off += start
		s.st.apply(o, sg)
	}
	sg.size += int64(len(b.buf))
	s.askSpare(sg)
	publish()
	s.publishBounds()
	s.mu.Unlock()
	s.askPrewrite(sg)
	s.stats.batches.Add(1)
	s.stats.bytes.Add(uint64(len(b.buf)))
	s.smu.Lock()
	s.wrote += uint64(len(b.buf))
	end := s.wrote
	s.smu.Unlock()
	return end, nil
}

// rotate seals the active segment and starts the next one, whose header
// records the current state. Callers hold wmu.
func (s *Storage) rotate() error {
	old := s.active()
	s.detachPrewrite()
	if err := old.seal(); err != nil {
		return s.fail(err)
	}
	s.stats.fsyncs.Add(1)
	sg, err := s.newSegment(old.seq+1, s.st.checkpoint())
	if err != nil {
		return s.fail(err)
	}
	if s.afterNewSegment != nil {
		s.afterNewSegment()
	}
	s.mu.Lock()
	s.segs = append(s.segs, sg)
	s.st.runOpen = false
	s.mu.Unlock()
	s.smu.Lock()
	s.synced = s.wrote // sealing synced all of it
	s.syncFile = sg.f
	s.scond.Broadcast()
	s.smu.Unlock()
	s.attachPrewrite(sg)
	return nil
}

// waitDurable returns once the first end bytes written are durable.
//
// Group commit: one waiter at a time becomes the syncer; it takes the
// amount written so far as its target, fsyncs, and wakes everyone. Writers
// that wrote while that fsync ran wait for it and then one of them syncs
// for all of them, so n concurrent writers cost about two fsyncs, not n.
func (s *Storage) waitDurable(end uint64) error {
	s.smu.Lock()
	defer s.smu.Unlock()
	for s.synced < end {
		if s.failed != nil {
			return s.failed
		}
		if s.syncing {
			s.scond.Wait()
			continue
		}
		s.syncing = true
		f, target := s.syncFile, s.wrote
		s.syncOn = f
		s.smu.Unlock()
		if s.beforeSync != nil {
			s.beforeSync()
		}
		var err error
		if !s.opts.NoSync {
			err = syncData(f)
			s.stats.fsyncs.Add(1)
		}
		s.smu.Lock()
		s.syncing, s.syncOn = false, nil
		if err != nil && s.failed == nil {
			s.failed = fmt.Errorf("wal: syncing: %w", err)
		}
		if err == nil {
			s.synced = max(s.synced, target)
		}
		s.scond.Broadcast()
	}
	return nil
}

// SegmentPaths returns the paths of the segment files, oldest first.
func (s *Storage) SegmentPaths() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]string, len(s.segs))
	for k, sg := range s.segs {
		out[k] = sg.path
	}
	return out
}
