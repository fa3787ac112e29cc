package wal

import (
	"fmt"

	pb "github.com/raftkit/raft/raftpb"
)

// A write group lets persistAppends write a run of MsgStorageAppend
// messages with one write system call instead of one per message. Each
// message is still its own batch, framed and closed by its batch-end record
// exactly as Save writes it, so the bytes on disk and what recovery makes
// of a torn tail are the same as with one write per batch: a crash keeps a
// prefix of whole batches, and none of them was acknowledged before the
// group's fsync anyway.
//
// The batches are staged one after the other in the storage's scratch
// buffer, under wmu, and reach the file and the in-memory state together
// when the group is flushed. Until then readers see none of them: the
// in-memory state must never point at bytes not yet in the file. Checking
// each message against the log as the messages before it left it uses the
// group's tail, the few fields of the log state that Save consults.

// tailState is the part of the log state that saveLocked checks a batch
// against.
type tailState struct {
	compactIndex, lastIndex uint64
	hardState               pb.HardState
}

// writeGroup is the batches staged for one write. Staged bytes are
// s.buf[from:] and their ops s.ops[opsFrom:]; both start at 0 and move up
// only when a rotation in the middle of a group flushes the batches before
// it.
type writeGroup struct {
	active  bool
	from    int
	opsFrom int
	batches int
	// ents holds each staged batch's entries, in order, for the cache.
	ents [][]pb.Entry
	// tail is the log as the staged batches leave it.
	tail tailState
}

// tail returns the log state the next batch is checked against. Callers
// hold wmu.
func (s *Storage) tail() tailState {
	if s.grp.active {
		return s.grp.tail
	}
	return tailState{compactIndex: s.st.compactIndex, lastIndex: s.st.lastIndex, hardState: s.st.hardState}
}

// saveGroup saves msgs, none of which installs a snapshot, as saveLocked
// would one by one, with one write for all of them (two if the active
// segment fills up in between). It returns where the writes end and
// whether any message must be durable before it is acknowledged. On error
// the batches not yet written are dropped.
func (s *Storage) saveGroup(msgs []pb.Message) (end uint64, mustSync bool, err error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	g := &s.grp
	*g = writeGroup{active: true, ents: g.ents[:0], tail: s.tail()}
	s.buf, s.ops = s.buf[:0], s.ops[:0]
	defer func() {
		clear(g.ents)
		g.ents = g.ents[:0]
		g.active = false
	}()
	for k := range msgs {
		m := &msgs[k]
		hs := pb.HardState{Term: m.Term, Vote: m.Vote, Commit: m.Commit}
		_, ms, err := s.saveLocked(hs, m.Entries, pb.Snapshot{})
		if err != nil {
			return 0, false, err
		}
		mustSync = mustSync || ms
	}
	if err := s.writeStaged(len(s.buf), len(s.ops)); err != nil {
		return 0, false, err
	}
	s.smu.Lock()
	end = s.wrote
	s.smu.Unlock()
	return end, mustSync, nil
}

// stage closes batch b (the last in the scratch buffers) with its batch-end
// record and adds it to the group; ents are its live entries and hs, if
// hsChanged, its HardState. If b would overflow the active segment, the
// batches staged before it are written first and the segment rotated, as
// commit does for a lone batch. Callers hold wmu.
func (s *Storage) stage(b *batch, ents []pb.Entry, hsChanged bool, hs pb.HardState) error {
	g := &s.grp
	s.buf, s.ops = b.buf, b.ops // keep the grown scratch buffers
	sg := s.active()
	at := sg.size + int64(b.base-g.from) // where b will land
	if at > sg.dataStart && at+int64(len(b.buf)-b.base+batchEndSize) > s.opts.SegmentSize {
		if err := s.writeStaged(b.base, b.opsBase); err != nil {
			return err
		}
		if err := s.rotate(); err != nil {
			return err
		}
		sg = s.active()
		at = sg.size
	}
	var tail [12]byte
	end := batchEndRecord{start: at, count: uint32(len(b.ops) - b.opsBase)}
	s.buf = appendFrame(s.buf, recBatchEnd, appendBatchEndPayload(tail[:0], end))
	g.batches++
	g.ents = append(g.ents, ents)
	if len(ents) > 0 {
		g.tail.lastIndex = ents[len(ents)-1].Index
	}
	if hsChanged {
		g.tail.hardState = hs
	}
	return nil
}

// writeStaged writes the staged batches that end at s.buf[end] (their ops
// at s.ops[opsEnd]) with one write at the end of the active segment, then
// applies them to the in-memory state, as commit does for one batch.
// Callers hold wmu.
func (s *Storage) writeStaged(end, opsEnd int) error {
	g := &s.grp
	data := s.buf[g.from:end]
	if len(data) == 0 {
		return nil
	}
	sg := s.active()
	start := sg.size
	s.stats.writes.Add(1)
	if _, err := sg.f.WriteAt(data, start); err != nil {
		return s.fail(fmt.Errorf("wal: writing %s: %w", sg.path, err))
	}
	shift := start - int64(g.from)
	s.mu.Lock()
	for k := g.opsFrom; k < opsEnd; k++ {
		o := &s.ops[k]
		o.off += shift
		s.st.apply(o, sg)
	}
	for _, ents := range g.ents {
		s.cache.add(ents)
	}
	sg.size += int64(len(data))
	s.askSpare(sg)
	s.publishBounds()
	s.mu.Unlock()
	s.stats.batches.Add(uint64(g.batches))
	s.stats.bytes.Add(uint64(len(data)))
	s.smu.Lock()
	s.wrote += uint64(len(data))
	s.smu.Unlock()
	clear(g.ents)
	g.ents = g.ents[:0]
	g.from, g.opsFrom, g.batches = end, opsEnd, 0
	return nil
}
