package kvservice

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"

	"go.uber.org/zap"

	"github.com/raftkit/raft"
	"github.com/raftkit/raft/multiraft"
	"github.com/raftkit/raft/raftpb"
)

// shardApp is the ShardedServer as the host's multiraft.Application: the
// host's workers hand it each shard's committed entries, read indexes and
// snapshots, one call at a time per shard.
type shardApp struct{ s *ShardedServer }

var _ multiraft.Application = shardApp{}

func (s *ShardedServer) rep(g multiraft.GroupID) *shardRep {
	i := int(g) - 1
	if i < 0 || i >= len(s.reps) {
		return nil
	}
	return s.reps[i]
}

// Apply implements multiraft.Application.
func (a shardApp) Apply(g multiraft.GroupID, ents []raftpb.Entry) {
	r := a.s.rep(g)
	if r == nil || r.failed {
		return
	}
	if err := a.s.applyShard(r, ents); err != nil {
		r.failed = true
		a.s.fail(fmt.Errorf("kvservice: shard %d: applying entries: %w", r.idx, err))
	}
}

// ReadIndexDone implements multiraft.Application: it hands each read its
// index.
func (a shardApp) ReadIndexDone(g multiraft.GroupID, rs []raft.ReadState) {
	s := a.s
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range rs {
		if w, ok := s.reads[string(r.RequestCtx)]; ok {
			w.ch <- r.Index
			delete(s.reads, string(r.RequestCtx))
		}
	}
}

// Restore implements multiraft.Application: the shard's range in the store
// is replaced with the snapshot's keys.
func (a shardApp) Restore(g multiraft.GroupID, snap raftpb.Snapshot) error {
	r := a.s.rep(g)
	if r == nil {
		return fmt.Errorf("kvservice: snapshot for group %d, which is no shard of this member", g)
	}
	return a.s.restoreShard(r, snap)
}

// reqAnswer is the outcome of a proposal this member made.
type reqAnswer struct {
	req uint64
	out outcome
}

// applyShard applies a shard's committed entries in one store batch with
// the new applied index, answers this member's proposals among them, and
// snapshots the shard when due.
func (s *ShardedServer) applyShard(r *shardRep, ents []raftpb.Entry) error {
	applied, keys := r.progress()
	if len(ents) == 0 || ents[len(ents)-1].Index <= applied {
		return nil
	}
	if h := s.cfg.hooks; h != nil && h.beforeApply != nil {
		if err := h.beforeApply(ents); err != nil {
			return err
		}
	}
	ab := r.sh.newApplyBatch(keys)
	defer ab.close()
	var answers []reqAnswer
	cfgChanged := false
	for _, e := range ents {
		if e.Index <= applied {
			continue
		}
		applied = e.Index
		s.m.entriesCommitted.Inc()
		// Configuration changes are the host's (it applied them to
		// raft); membership is fixed, so the shard records nothing.
		if e.Type != raftpb.EntryNormal || len(e.Data) == 0 {
			continue
		}
		c, err := decodeCommand(e.Data)
		if err != nil {
			s.lg.Error("skipping undecodable entry", zap.Int("shard", r.idx), zap.Uint64("index", e.Index), zap.Error(err))
			continue
		}
		var out outcome
		if c.Op == opHello {
			var changed bool
			out, changed = r.hello(c)
			cfgChanged = cfgChanged || changed
		} else {
			res, err := ab.apply(c)
			if err != nil {
				return err
			}
			out.res = res
		}
		if c.Node == s.cfg.ID {
			answers = append(answers, reqAnswer{c.Req, out})
		}
	}
	var cfg *shardConfig
	if cfgChanged || !r.inStore {
		cfg = &r.cfg
	}
	if err := ab.commit(applied, cfg); err != nil {
		return fmt.Errorf("writing to the state store: %w", err)
	}
	r.inStore = true
	r.setApplied(applied, ab.keys, false)
	if cfgChanged && !s.ready.Load() {
		// The cluster's shard count, recorded by the first hello: the
		// member serves if it is its own (see hello.go).
		if err := s.checkRecordedCount(); err != nil {
			s.fail(err)
		}
	}
	s.answer(answers)
	return s.maybeSnapshot(r)
}

// answer hands proposals their outcomes.
func (s *ShardedServer) answer(answers []reqAnswer) {
	if len(answers) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range answers {
		if w, ok := s.proposals[a.req]; ok {
			w.ch <- a.out
			delete(s.proposals, a.req)
		}
	}
}

// restoreShard replaces the shard with a snapshot's state (see
// encodeShardSnapshot) and makes the store durable.
func (s *ShardedServer) restoreShard(r *shardRep, snap raftpb.Snapshot) error {
	index := snap.Metadata.Index
	s.dataMu.Lock()
	if s.closed {
		s.dataMu.Unlock()
		return ErrStopped
	}
	hdr, err := r.sh.installStream(bufio.NewReader(bytes.NewReader(snap.Data)), index)
	if err == nil {
		err = s.store.sync()
	}
	s.dataMu.Unlock()
	if err != nil {
		return fmt.Errorf("kvservice: shard %d: installing the snapshot at %d: %w", r.idx, index, err)
	}
	r.cfg, r.inStore = hdr.Config, true
	r.setApplied(index, hdr.Keys, true)
	s.m.snapshotsApplied.Inc()
	s.lg.Info("installed a shard snapshot", zap.Int("shard", r.idx), zap.Uint64("index", index), zap.Uint64("keys", hdr.Keys))
	return nil
}

// maybeSnapshot snapshots the shard once SnapshotCount entries were applied
// since its last snapshot, and lets the host compact its log. It runs on
// the worker holding the shard, so nothing changes the shard meanwhile.
// A shard whose snapshot would not fit a peer frame keeps its log (see
// errSnapshotTooLarge).
func (s *ShardedServer) maybeSnapshot(r *shardRep) error {
	r.mu.Lock()
	applied, keys, last := r.applied, r.keys, r.snapIndex
	if applied-last < s.cfg.SnapshotCount {
		r.mu.Unlock()
		return nil
	}
	r.snapIndex = applied // taken or tried: the next try is SnapshotCount later
	r.mu.Unlock()
	data, err := r.encodeSnapshot(applied, keys, s.snapshotLimit())
	if errors.Is(err, errSnapshotTooLarge) {
		s.m.snapshotsTooLarge.Inc()
		s.lg.Warn("shard too large to snapshot; keeping its log (use more shards)", zap.Int("shard", r.idx),
			zap.Uint64("applied", applied), zap.Uint64("keys", keys), zap.Int("limit", s.snapshotLimit()))
		return nil
	}
	if err != nil {
		return err
	}
	// The log below applied goes away: the store must hold it first.
	if err := s.store.sync(); err != nil {
		return err
	}
	if err := s.host.Compact(r.group(), applied, data); err != nil && !errors.Is(err, multiraft.ErrClosed) {
		return err
	}
	s.m.snapshotsTaken.Inc()
	return nil
}
