package kvservice

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"go.uber.org/zap"

	"github.com/raftkit/raft"
	"github.com/raftkit/raft/raftpb"
)

// removedPeerGrace is how long a removed member stays a transport peer after
// its removal applied here, so that the messages telling it the removal
// committed are not dropped with its queue.
const removedPeerGrace = 2 * time.Second

// loop runs the Ready cycle until it ends, then shuts the server down. Not
// deferred: a panic (a broken invariant) must crash the process with its
// own trace, where shutting down on the way out would wait for locks the
// panicking code may hold and hang the member silently.
func (s *Server) loop() {
	s.runLoop()
	s.shutdown()
}

// runLoop runs the Ready cycle (persist, send, apply, Advance) until Stop,
// a storage failure or this member's removal.
func (s *Server) runLoop() {
	ticker := time.NewTicker(s.cfg.TickInterval)
	defer ticker.Stop()
	ticks := 0
	for {
		select {
		case <-ticker.C:
			s.node.Tick()
			if ticks++; ticks%promoteCheckTicks == 0 {
				s.maybePromoteLearners()
			}
		case rd := <-s.node.Ready():
			if err := s.handleReady(rd); err != nil {
				s.lg.Error("stopping: cannot persist raft state", zap.Error(err))
				s.setErr(err)
				return
			}
			s.node.Advance()
			if s.isRemoved() {
				s.lg.Warn("this member was removed from the cluster; stopping")
				s.setErr(ErrRemoved)
				return
			}
		case <-s.stopc:
			return
		}
	}
}

func (s *Server) handleReady(rd raft.Ready) error {
	if rd.SoftState != nil {
		s.setLeader(rd.SoftState.Lead)
	}
	start := time.Now()
	if err := s.storage.Save(rd.HardState, rd.Entries, rd.Snapshot); err != nil {
		return err
	}
	if rd.MustSync {
		s.m.fsync.Observe(time.Since(start).Seconds())
	}
	if !raft.IsEmptySnap(rd.Snapshot) {
		if err := s.installSnapshot(rd.Snapshot); err != nil {
			return err
		}
	}
	// Messages go out only after the Save above: votes and append
	// acknowledgements promise what is now on disk.
	s.tr.Send(rd.Messages)
	for _, rs := range rd.ReadStates {
		s.mu.Lock()
		if ch, ok := s.reads[string(rs.RequestCtx)]; ok {
			ch <- rs.Index
			delete(s.reads, string(rs.RequestCtx))
		}
		s.mu.Unlock()
	}
	if err := s.applyCommitted(rd.CommittedEntries); err != nil {
		return err
	}
	return s.maybeSnapshot()
}

// setLeader records the leader raft reports. A leader change fails the
// proposals in flight: the old leader may have lost them, or may have
// replicated them to the new one, so their outcome is unknown and the
// clients are told so now rather than after a timeout.
func (s *Server) setLeader(lead uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if lead == s.lead {
		return
	}
	old := s.lead
	s.lead = lead
	if lead != 0 {
		s.m.leaderChanges.Inc()
		s.lg.Info("leader changed", zap.Uint64("old", old), zap.Uint64("new", lead))
	} else {
		s.lg.Info("leader lost", zap.Uint64("old", old))
	}
	if old != 0 {
		for id, ch := range s.proposals {
			ch <- outcome{err: ErrLeaderChanged}
			delete(s.proposals, id)
		}
	}
}

// installSnapshot replaces the shard with a snapshot received from the
// leader (the WAL holds its descriptor already).
func (s *Server) installSnapshot(snap raftpb.Snapshot) error {
	meta, err := s.installSnapshotData(snap)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.state = meta.cfg.state()
	s.keys = meta.keys
	s.applied = snap.Metadata.Index
	s.snapIndex = snap.Metadata.Index
	s.confState = snap.Metadata.ConfState
	s.releaseAppliedLocked()
	state := s.state
	s.mu.Unlock()
	s.shard.pin(meta.applied, meta.keys, meta.cfg)
	s.m.snapshotsApplied.Inc()
	s.lg.Info("installed snapshot from leader", zap.Uint64("index", snap.Metadata.Index),
		zap.Uint64("term", snap.Metadata.Term), zap.Uint64("keys", meta.keys))
	for _, m := range state.memberList() {
		s.addPeer(m)
	}
	for id := range state.Removed {
		if id != s.cfg.ID {
			s.tr.RemovePeer(id)
		}
	}
	return nil
}

// installSnapshotData writes a snapshot's state to the store: from the file
// its descriptor names, or, for a snapshot in the JSON form, from its data.
// Readers wait meanwhile: the shard is replaced in several batches.
func (s *Server) installSnapshotData(snap raftpb.Snapshot) (shardMeta, error) {
	s.dataMu.Lock()
	defer s.dataMu.Unlock()
	index := snap.Metadata.Index
	d, ok := decodeDescriptor(snap.Data)
	if !ok {
		state, err := unmarshalKVState(snap.Data)
		if err != nil {
			return shardMeta{}, err
		}
		return s.shard.importState(state, index, snap.Metadata.ConfState)
	}
	if d.File == "" {
		return shardMeta{}, fmt.Errorf("kvservice: snapshot at index %d names no file to install", index)
	}
	dir := filepath.Join(s.cfg.Dir, snapDirName)
	hdr, err := s.shard.installFile(filepath.Join(dir, filepath.Base(d.File)), index)
	if err != nil {
		return shardMeta{}, err
	}
	removeSnapFilesUpTo(dir, s.shard.group, index, s.lg)
	return shardMeta{applied: index, keys: hdr.Keys, cfg: hdr.Config}, nil
}

// applyCommitted applies entries in one store batch, then answers the
// proposals they carry: a client hears of its write once the write is in
// the store, where reads look.
func (s *Server) applyCommitted(ents []raftpb.Entry) error {
	s.mu.RLock()
	applied, keys := s.applied, s.keys
	s.mu.RUnlock()
	if len(ents) == 0 || ents[len(ents)-1].Index <= applied {
		return nil
	}
	if h := s.cfg.hooks; h != nil && h.beforeApply != nil {
		if err := h.beforeApply(ents); err != nil {
			return err
		}
	}
	ab := s.shard.newApplyBatch(keys)
	defer ab.close()
	dec, err := readAhead(ab, ents, applied)
	if err != nil {
		return fmt.Errorf("kvservice: reading the keys of applied entries: %w", err)
	}
	type answer struct {
		req uint64
		out outcome
	}
	var answers []answer
	cfgChanged := false
	for i, e := range ents {
		if e.Index <= applied {
			continue
		}
		node, req, out, changed, err := s.applyEntry(ab, e, dec[i])
		if err != nil {
			return err
		}
		cfgChanged = cfgChanged || changed
		if node == s.cfg.ID {
			answers = append(answers, answer{req, out})
		}
		applied = e.Index
		s.m.entriesCommitted.Inc()
	}
	var cfg *shardConfig
	if cfgChanged {
		cfg = s.shardConfig()
	}
	if err := ab.commit(applied, cfg); err != nil {
		return fmt.Errorf("kvservice: writing applied entries to the state store: %w", err)
	}
	s.mu.Lock()
	s.applied = applied
	s.keys = ab.keys
	for _, a := range answers {
		if ch, ok := s.proposals[a.req]; ok {
			ch <- a.out
			delete(s.proposals, a.req)
		}
	}
	s.releaseAppliedLocked()
	s.mu.Unlock()
	return nil
}

// shardConfig returns the configuration to store. Only the loop changes
// it, and the loop calls this.
func (s *Server) shardConfig() *shardConfig {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return &shardConfig{Members: s.state.Members, Removed: s.state.Removed, ConfState: s.confState}
}

// readAhead decodes the commands of ents past applied and reads the keys
// they touch into ab with one iterator (applyBatch.prefetch), instead of
// a point read per command, which would skip the last level's bloom
// filters. dec[i] is ents[i]'s command, zero for the entries that carry
// none.
func readAhead(ab *applyBatch, ents []raftpb.Entry, applied uint64) ([]decoded, error) {
	dec, keys := decodeEntries(ab.sh, ents, applied, nil)
	return dec, ab.prefetch(keys)
}

// applyEntry applies one entry, whose command readAhead decoded into d,
// into ab and returns the proposal it answers and whether it changed the
// configuration.
func (s *Server) applyEntry(ab *applyBatch, e raftpb.Entry, d decoded) (node, req uint64, out outcome, cfgChanged bool, err error) {
	switch e.Type {
	case raftpb.EntryNormal:
		if len(e.Data) == 0 {
			return 0, 0, out, false, nil
		}
		c, err := d.c, d.err
		if err != nil {
			// Every node decodes the same bytes the same way, so
			// skipping keeps them identical; only a foreign writer
			// could have put this entry in the log.
			s.lg.Error("skipping undecodable entry", zap.Uint64("index", e.Index), zap.Error(err))
			return 0, 0, out, false, nil
		}
		out.res, err = ab.apply(c)
		return c.Node, c.Req, out, false, err
	case raftpb.EntryConfChange:
		var cc raftpb.ConfChange
		if err := cc.Unmarshal(e.Data); err != nil {
			return 0, 0, out, false, err
		}
		node, req, out = s.applyConfChange(cc)
		return node, req, out, true, nil
	case raftpb.EntryConfChangeV2:
		// This service proposes only v1 changes; a v2 one is still applied
		// to raft so that the configuration stays in step with the log.
		var cc raftpb.ConfChangeV2
		if err := cc.Unmarshal(e.Data); err != nil {
			return 0, 0, out, false, err
		}
		cs := s.node.ApplyConfChange(cc)
		s.mu.Lock()
		s.confState = *cs
		s.confChanged = true
		s.mu.Unlock()
		return 0, 0, out, true, nil
	}
	return 0, 0, out, false, nil
}

func (s *Server) applyConfChange(cc raftpb.ConfChange) (node, req uint64, out outcome) {
	var ctx confContext
	if len(cc.Context) > 0 {
		if err := json.Unmarshal(cc.Context, &ctx); err != nil {
			s.lg.Error("undecodable conf change context", zap.Error(err))
		}
	}
	adding := cc.Type == raftpb.ConfChangeAddNode || cc.Type == raftpb.ConfChangeAddLearnerNode
	s.mu.RLock()
	refused := adding && s.state.Removed[cc.NodeID]
	s.mu.RUnlock()
	if refused {
		// AddMember checks this before proposing, but a removal can commit
		// between that check and this entry. Every member sees the same
		// log and the same Removed set, so every member refuses alike. A
		// rejected change is a no-op entry: raft must not be told of it.
		s.lg.Warn("refusing to add a removed member ID", zap.Uint64("id", cc.NodeID))
		return ctx.Node, ctx.Req, outcome{err: fmt.Errorf("%w: %d", ErrMemberRemoved, cc.NodeID)}
	}
	cs := s.node.ApplyConfChange(cc)
	s.mu.Lock()
	_, promoted := s.state.Members[cc.NodeID]
	promoted = promoted && cc.Type == raftpb.ConfChangeAddNode
	s.confState = *cs
	s.confChanged = true
	switch {
	case adding:
		m := ctx.Member
		m.ID = cc.NodeID
		s.state.Members[m.ID] = m
	case cc.Type == raftpb.ConfChangeRemoveNode:
		delete(s.state.Members, cc.NodeID)
		s.state.Removed[cc.NodeID] = true
		if cc.NodeID == s.cfg.ID {
			s.removed = true
		}
	}
	s.mu.Unlock()
	switch {
	case promoted:
		s.lg.Info("learner promoted to voter", zap.Uint64("id", cc.NodeID))
	case adding:
		s.lg.Info("member added", zap.Uint64("id", cc.NodeID), zap.String("peer", ctx.Member.PeerAddr),
			zap.Bool("learner", cc.Type == raftpb.ConfChangeAddLearnerNode))
		s.addPeer(Member{ID: cc.NodeID, PeerAddr: ctx.Member.PeerAddr})
	case cc.Type == raftpb.ConfChangeRemoveNode:
		s.lg.Info("member removed", zap.Uint64("id", cc.NodeID))
		if cc.NodeID != s.cfg.ID {
			s.forgetPeerLater(cc.NodeID)
		}
	}
	return ctx.Node, ctx.Req, outcome{cs: cs, res: Result{Succeeded: true}}
}

// forgetPeerLater drops a removed member from the transport after
// removedPeerGrace. From then on the transport refuses its streams as coming
// from an unknown member, so a stale process under that ID cannot talk its
// way back in.
func (s *Server) forgetPeerLater(id uint64) {
	time.AfterFunc(removedPeerGrace, func() {
		select {
		case <-s.donec:
		default:
			s.tr.RemovePeer(id)
		}
	})
}

// releaseAppliedLocked wakes the waiters whose index has been applied.
func (s *Server) releaseAppliedLocked() {
	s.appliedWs = releaseApplied(s.appliedWs, s.applied)
}

// releaseApplied wakes the waiters of ws whose index is at most applied and
// returns the others.
func releaseApplied(ws []appliedWaiter, applied uint64) []appliedWaiter {
	kept := ws[:0]
	for _, w := range ws {
		if w.index <= applied {
			close(w.ch)
		} else {
			kept = append(kept, w)
		}
	}
	return kept
}

// maybeSnapshot snapshots the state machine once SnapshotCount entries were
// applied since the last snapshot, and compacts the log, keeping
// CatchUpEntries entries before the snapshot for followers that lag a little.
//
// It also snapshots after every conf change. Raft sends a new member the
// latest stored snapshot, and a member refuses a snapshot whose ConfState
// does not include it: without a snapshot taken after its addition, a
// member added to a cluster whose log starts with a snapshot could never
// catch up.
func (s *Server) maybeSnapshot() error {
	// The write lock, not the read lock: confChanged is written here.
	s.mu.Lock()
	applied, snapIndex, keys := s.applied, s.snapIndex, s.keys
	force := s.confChanged && applied > snapIndex
	s.confChanged = false
	if applied-snapIndex < s.cfg.SnapshotCount && !force {
		s.mu.Unlock()
		return nil
	}
	cs := s.confState
	s.mu.Unlock()
	// The snapshot is only a descriptor: the state is in the store, which
	// must be durable before the log it replaces is compacted.
	if err := s.store.sync(); err != nil {
		return err
	}
	data := snapDescriptor{Format: storeLayoutVersion, Group: s.shard.group}.marshal()
	if _, err := s.storage.CreateSnapshot(applied, &cs, data); err != nil && !errors.Is(err, raft.ErrSnapOutOfDate) {
		return err
	}
	s.shard.pin(applied, keys, *s.shardConfig())
	s.mu.Lock()
	s.snapIndex = applied
	s.mu.Unlock()
	s.m.snapshotsTaken.Inc()
	if applied > s.cfg.CatchUpEntries {
		compactTo := applied - s.cfg.CatchUpEntries
		if first, _ := s.storage.FirstIndex(); compactTo >= first {
			if err := s.storage.Compact(compactTo); err != nil && !errors.Is(err, raft.ErrCompacted) {
				return err
			}
		}
	}
	s.lg.Info("snapshot taken", zap.Uint64("index", applied), zap.Uint64("keys", keys))
	return nil
}

func (s *Server) isRemoved() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.removed
}
