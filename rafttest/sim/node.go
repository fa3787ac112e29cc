package sim

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/raftkit/raft"
	"github.com/raftkit/raft/internal/knobs"
	pb "github.com/raftkit/raft/raftpb"
)

// node is one simulated server: a RawNode over a MemoryStorage that holds
// everything written (durable or still buffered), the disk that survives
// crashes, and the application state that raft's log drives.
type node struct {
	id    uint64
	rn    *raft.RawNode
	store *raft.MemoryStorage
	disk  disk
	// unsynced is a HardState written without fsync (Ready.MustSync was
	// false): visible to raft, lost by a crash, made durable by the next
	// synced write.
	unsynced *pb.HardState
	rep      *replica
	conf     pb.ConfState

	up bool
	// retired nodes were removed from the configuration and shut down by
	// the operator; they never restart.
	retired bool
	downAt  int // step of the crash, while down

	// Work for the storage threads under AsyncStorageWrites, in order.
	appendQ, applyQ []pb.Message

	// reads waiting for their ReadState, then for the store to catch up.
	reads []*pendingRead

	// For the lease-safety check (lease.go): the step of the last Ready,
	// the latest term this node led, the index of that term's first entry
	// and the step at which it was committed (0 until then).
	lastReady int
	// The node's clock (clock.go): ticks every period subTicks, next at
	// nextTick.
	period, nextTick int64
	ticked           int // ticks given, for tests
	leadTerm         uint64
	leadFirst        uint64
	leadCommitStep   int
}

// pendingRead is a get served through ReadIndex at this node.
type pendingRead struct {
	op     *clientOp
	readID uint64 // the attempt: a retry re-issues the read under a new ID
	index  uint64 // 0 until the ReadState arrives
}

// readCtx is the ReadIndex request context of operation id.
func readCtx(id uint64) []byte {
	var b [9]byte
	b[0] = 'r'
	binary.BigEndian.PutUint64(b[1:], id)
	return b[:]
}

// raftConfig is the configuration every incarnation of a node runs with.
func (s *Sim) raftConfig(id uint64, st raft.Storage) *raft.Config {
	c := &raft.Config{
		ID:                       id,
		ElectionTick:             electionTick,
		HeartbeatTick:            1,
		Storage:                  st,
		MaxSizePerMsg:            s.maxMsgSize,
		MaxCommittedSizePerReady: s.maxMsgSize * 4,
		MaxInflightMsgs:          s.maxInflight,
		CheckQuorum:              s.checkQuorum,
		PreVote:                  s.preVote,
		ReadOnlyOption:           s.readOnly,
		AsyncStorageWrites:       s.async,
		StepDownOnRemoval:        true,
		Logger:                   quietLogger{},
	}
	return c
}

// start (re)creates the RawNode from the disk: the state machine restarts
// from the disk's snapshot, and raft hands out again every committed entry
// after it.
func (s *Sim) start(n *node) {
	n.store = n.disk.storage()
	n.unsynced = nil
	rep, err := newReplica(s.workload, n.disk.snap.Data, n.disk.snap.Metadata.Index)
	if err != nil {
		s.fail("snapshot decoding", "node %d: %v", n.id, err)
		return
	}
	n.rep = rep
	n.conf = n.disk.snap.Metadata.ConfState
	n.appendQ, n.applyQ, n.reads = nil, nil, nil
	rn, err := raft.NewRawNode(s.raftConfig(n.id, freshSnapshots{n.store, n}))
	if err != nil {
		s.fail("restart", "node %d: %v", n.id, err)
		return
	}
	// Every election timeout comes from the simulation's seeded source, so
	// that timeouts are part of the schedule the seed determines.
	knobs.SetElectionJitter(rn, s.rng.Intn)
	rn.SetFastFailover(s.fastFailover)
	n.rn = rn
	n.up = true
	n.lastReady, n.leadTerm, n.leadFirst, n.leadCommitStep = s.step, 0, 0, 0
}

// persist carries out a synchronous Ready's writes. With torn >= 0 the node
// crashes in the middle: of the writes in order (snapshot, each entry,
// HardState) only the first torn reach the disk, and the function reports
// false.
func (s *Sim) persist(n *node, rd raft.Ready, torn int) bool {
	hasSnap := !raft.IsEmptySnap(rd.Snapshot)
	if torn >= 0 {
		k := torn
		if hasSnap {
			if k == 0 {
				return false
			}
			k--
			n.disk.applySnapshot(rd.Snapshot)
		}
		n.disk.append(rd.Entries[:min(k, len(rd.Entries))])
		// The HardState is the batch's last record, so a torn batch never
		// has it.
		return false
	}
	if hasSnap {
		if err := n.store.ApplySnapshot(rd.Snapshot); err != nil {
			s.fail("storage", "node %d: applying snapshot: %v", n.id, err)
		}
	}
	if err := n.store.Append(rd.Entries); err != nil {
		s.fail("storage", "node %d: append: %v", n.id, err)
	}
	if !raft.IsEmptyHardState(rd.HardState) {
		if err := n.store.SetHardState(rd.HardState); err != nil {
			s.fail("storage", "node %d: %v", n.id, err)
		}
	}
	s.noteWritten(n, rd.Entries)
	if !rd.MustSync && !hasSnap && len(rd.Entries) == 0 {
		if !raft.IsEmptyHardState(rd.HardState) {
			hs := rd.HardState
			n.unsynced = &hs
		}
		return true
	}
	s.sync(n)
	if hasSnap {
		n.disk.applySnapshot(rd.Snapshot)
	}
	n.disk.append(rd.Entries)
	s.writeHardState(n, rd.HardState)
	return true
}

// sync makes the buffered HardState durable, as an fsync of the log file
// would.
func (s *Sim) sync(n *node) {
	if n.unsynced != nil {
		hs := *n.unsynced
		n.unsynced = nil
		s.writeHardState(n, hs)
	}
}

func (s *Sim) writeHardState(n *node, hs pb.HardState) {
	if err := n.disk.setHardState(hs); err != nil {
		s.fail("durable state monotonic", "node %d: %v", n.id, err)
	}
}

// handleReady processes one Ready of an up node, per the Ready contract.
func (s *Sim) handleReady(n *node) {
	rd := n.rn.Ready()
	s.judgeReads(n, &rd)
	n.lastReady = s.step
	s.noteReadStates(n, rd.ReadStates)
	if s.async {
		for _, m := range rd.Messages {
			switch m.To {
			case raft.LocalAppendThread:
				n.appendQ = append(n.appendQ, m)
			case raft.LocalApplyThread:
				n.applyQ = append(n.applyQ, m)
			default:
				s.send(m)
			}
		}
		return
	}
	torn := -1
	if s.chance(s.faults.torn) {
		torn = s.rng.Intn(len(rd.Entries) + 2)
	}
	if !s.persist(n, rd, torn) {
		s.stats.TornWrites++
		s.event("torn write node=%d kept=%d of %d entries", n.id, torn, len(rd.Entries))
		s.crash(n)
		return
	}
	for _, m := range rd.Messages {
		s.send(m)
	}
	if !raft.IsEmptySnap(rd.Snapshot) {
		s.restoreSnapshot(n, rd.Snapshot)
	}
	s.applyEntries(n, rd.CommittedEntries)
	n.rn.Advance(rd)
}

// processAppend runs the append thread of n for one work item.
func (s *Sim) processAppend(n *node) {
	m := n.appendQ[0]
	n.appendQ = n.appendQ[1:]
	if s.chance(s.faults.torn) {
		var ents []pb.Entry
		keep := s.rng.Intn(len(m.Entries) + 1)
		if m.Snapshot == nil || s.rng.Intn(2) == 0 {
			if m.Snapshot != nil {
				n.disk.applySnapshot(*m.Snapshot)
			}
			ents = m.Entries[:keep]
		}
		n.disk.append(ents)
		s.stats.TornWrites++
		s.event("torn append node=%d kept=%d of %d entries", n.id, len(ents), len(m.Entries))
		s.crash(n)
		return
	}
	if m.Snapshot != nil {
		if err := n.store.ApplySnapshot(*m.Snapshot); err != nil {
			s.fail("storage", "node %d: applying snapshot: %v", n.id, err)
		}
		n.disk.applySnapshot(*m.Snapshot)
		s.restoreSnapshot(n, *m.Snapshot)
	}
	if err := n.store.Append(m.Entries); err != nil {
		s.fail("storage", "node %d: append: %v", n.id, err)
	}
	s.noteWritten(n, m.Entries)
	n.disk.append(m.Entries)
	hs := pb.HardState{Term: m.Term, Vote: m.Vote, Commit: m.Commit}
	if !raft.IsEmptyHardState(hs) {
		if err := n.store.SetHardState(hs); err != nil {
			s.fail("storage", "node %d: %v", n.id, err)
		}
		s.writeHardState(n, hs)
	}
	s.deliverResponses(n, m.Responses)
}

// processApply runs the apply thread of n for one work item.
func (s *Sim) processApply(n *node) {
	m := n.applyQ[0]
	n.applyQ = n.applyQ[1:]
	s.applyEntries(n, m.Entries)
	s.deliverResponses(n, m.Responses)
}

// deliverResponses hands a storage thread's responses to their targets:
// the local node, or the network.
func (s *Sim) deliverResponses(n *node, resps []pb.Message) {
	for _, r := range resps {
		if r.To != n.id {
			s.send(r)
			continue
		}
		if !n.up {
			return
		}
		if err := n.rn.Step(r); err != nil {
			s.event("node %d local step %s: %v", n.id, r.Type, err)
		}
	}
}

// restoreSnapshot replaces the state machine with a snapshot's contents.
func (s *Sim) restoreSnapshot(n *node, snap pb.Snapshot) {
	if snap.Metadata.Index <= n.rep.applied {
		return
	}
	if err := n.rep.restore(snap.Data, snap.Metadata.Index); err != nil {
		s.fail("snapshot decoding", "node %d: %v", n.id, err)
		return
	}
	n.conf = snap.Metadata.ConfState
	s.event("node %d restored snapshot %d/%d", n.id, snap.Metadata.Term, snap.Metadata.Index)
}

// applyEntries folds committed entries into the node's state machine and
// configuration, answering the clients that asked this node.
func (s *Sim) applyEntries(n *node, ents []pb.Entry) {
	for i := range ents {
		e := &ents[i]
		if !n.up {
			return
		}
		if e.Index <= n.rep.applied {
			continue
		}
		if e.Index != n.rep.applied+1 {
			s.fail("apply order", "node %d applies %d after %d", n.id, e.Index, n.rep.applied)
			return
		}
		s.noteApplied(n, e)
		switch e.Type {
		case pb.EntryNormal:
			s.applyWrite(n, e)
		default:
			n.rep.applied = e.Index
			s.applyConfChange(n, e)
		}
	}
	s.serveReads(n)
	s.maybeCompact(n)
}

// applyConfChange applies a committed configuration change, and retires
// the nodes it removes once the leader has applied it.
func (s *Sim) applyConfChange(n *node, e *pb.Entry) {
	var cc pb.ConfChangeI
	if e.Type == pb.EntryConfChange {
		var c pb.ConfChange
		if err := c.Unmarshal(e.Data); err != nil {
			s.fail("conf change decoding", "node %d: %v", n.id, err)
			return
		}
		cc = c
	} else {
		var c pb.ConfChangeV2
		if err := c.Unmarshal(e.Data); err != nil {
			s.fail("conf change decoding", "node %d: %v", n.id, err)
			return
		}
		cc = c
	}
	wasLeader := n.rn.BasicStatus().RaftState == raft.StateLeader
	n.conf = *n.rn.ApplyConfChange(cc)
	for _, set := range [][]uint64{n.conf.Voters, n.conf.VotersOutgoing, n.conf.Learners, n.conf.LearnersNext} {
		for _, id := range set {
			s.everMember[id] = true
		}
	}
	if !wasLeader {
		return
	}
	s.stats.ConfChanges++
	s.event("leader %d applied conf change at %d: %s", n.id, e.Index, fmtConf(n.conf))
	members := map[uint64]bool{}
	for _, set := range [][]uint64{n.conf.Voters, n.conf.VotersOutgoing, n.conf.Learners, n.conf.LearnersNext} {
		for _, id := range set {
			members[id] = true
		}
	}
	for _, id := range s.ids {
		if m := s.nodes[id]; !members[id] && !m.retired && s.everMember[id] {
			s.retire(m)
		}
	}
}

// maybeCompact sometimes snapshots the state machine and compacts the
// log, keeping a few entries for followers that lag a little.
func (s *Sim) maybeCompact(n *node) {
	if !s.chance(s.work.compact) {
		return
	}
	last, _ := n.store.LastIndex()
	first, _ := n.store.FirstIndex()
	idx := n.rep.applied
	// Under AsyncStorageWrites the store may run ahead of the local log
	// (committed entries are applied before they are persisted here); the
	// snapshot must wait until storage has caught up.
	if idx < first || idx > last {
		return
	}
	data := n.rep.snapshotData()
	s.noteState(n, idx, data)
	snap, err := n.store.CreateSnapshot(idx, &n.conf, data)
	if err != nil {
		return // out of date: a newer snapshot is already there
	}
	keep := uint64(s.rng.Intn(8))
	if idx > keep && idx-keep >= first {
		_ = n.store.Compact(idx - keep)
	}
	s.sync(n)
	n.disk.compact(snap)
	s.stats.Compactions++
	s.event("node %d compacted at %d", n.id, idx)
}

func fmtConf(cs pb.ConfState) string {
	var b bytes.Buffer
	b.WriteString("voters=")
	writeIDs(&b, cs.Voters)
	if len(cs.VotersOutgoing) > 0 {
		b.WriteString("&&")
		writeIDs(&b, cs.VotersOutgoing)
	}
	if len(cs.Learners) > 0 {
		b.WriteString(" learners=")
		writeIDs(&b, cs.Learners)
	}
	if len(cs.LearnersNext) > 0 {
		b.WriteString(" learners_next=")
		writeIDs(&b, cs.LearnersNext)
	}
	return b.String()
}

func writeIDs(b *bytes.Buffer, ids []uint64) {
	b.WriteByte('(')
	for i, id := range ids {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprint(b, id)
	}
	b.WriteByte(')')
}

// freshSnapshots is the storage raft reads: a MemoryStorage whose
// Snapshot is taken on demand from the state machine, as an application
// that sends snapshots to lagging followers does. A snapshot taken at the
// last compaction could predate a follower's addition, and a follower
// refuses a snapshot whose configuration does not include it.
type freshSnapshots struct {
	*raft.MemoryStorage
	n *node
}

// Snapshot returns a snapshot of the state machine as applied now, if the
// storage holds the entry it was applied up to; else the latest one.
func (f freshSnapshots) Snapshot() (pb.Snapshot, error) {
	n := f.n
	last, _ := f.LastIndex()
	if n.rep != nil && n.rep.applied <= last {
		if snap, err := f.CreateSnapshot(n.rep.applied, &n.conf, n.rep.snapshotData()); err == nil {
			return snap, nil
		}
	}
	return f.MemoryStorage.Snapshot()
}
