package kvservice

import (
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

var (
	_ multiraft.RoundApplication     = shardApp{}
	_ multiraft.ProposalDropObserver = shardApp{}
)

// ProposalsDropped implements multiraft.ProposalDropObserver: raft refused
// these proposals of this member (no leader known, or the shard's
// leadership moving away from this member), so they will never apply, and
// their clients are answered now (503, not-applied) instead of at their
// request timeout (504, unknown).
func (a shardApp) ProposalsDropped(g multiraft.GroupID, data [][]byte) {
	r := a.s.rep(g)
	if r == nil {
		return
	}
	s := a.s
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range data {
		c, err := decodeCommand(d)
		if err != nil || c.Node != s.cfg.ID {
			continue
		}
		if w, ok := s.proposals[c.Req]; ok && w.shard == r.idx {
			w.ch <- outcome{err: fmt.Errorf("%w (shard %d refused the proposal: no leader known, or its leadership is moving)", ErrNoLeader, r.idx)}
			delete(s.proposals, c.Req)
		}
	}
}

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

// ApplyRound implements multiraft.RoundApplication: the committed entries
// of all the round's shards go to the store in one batch (one Pebble
// commit per round instead of one per shard), each shard's applied index
// with its entries' effects as before, so the batch's atomicity keeps every
// shard's "applied index matches the data" invariant. A failure fails
// every shard of the round: nothing of the round is committed.
func (a shardApp) ApplyRound(batch []multiraft.GroupEntries) {
	s := a.s
	ab := s.store.newRoundBatch()
	defer ab.close()
	staged := make([]*stagedShard, 0, len(batch))
	decs, err := s.prefetch(ab, batch)
	for i, ge := range batch {
		r := s.rep(ge.Group)
		if err != nil || r == nil || r.failed {
			continue
		}
		var st *stagedShard
		if st, err = s.stageShard(ab, r, ge.Entries, decs[i]); err != nil {
			err = fmt.Errorf("kvservice: shard %d: applying entries: %w", r.idx, err)
			break
		}
		if st != nil {
			staged = append(staged, st)
		}
	}
	if err == nil && len(staged) > 0 {
		if err = ab.commitRound(); err != nil {
			err = fmt.Errorf("kvservice: applying entries: writing to the state store: %w", err)
		}
	}
	if err != nil {
		for _, ge := range batch {
			if r := s.rep(ge.Group); r != nil {
				r.failed = true
			}
		}
		s.fail(err)
		return
	}
	for _, st := range staged {
		if err := s.finishShard(st); err != nil {
			st.r.failed = true
			s.fail(fmt.Errorf("kvservice: shard %d: applying entries: %w", st.r.idx, err))
		}
	}
}

// decoded is an entry's command, decoded once for prefetch and apply.
type decoded struct {
	c   command
	err error
}

// prefetch decodes the round's commands (one slice per group of batch,
// nil for a group not applied here) and reads the values of the keys they
// touch into ab, in key order with one store iterator: with the round's
// keys spread over many shards, that costs less than one point read per
// command.
func (s *ShardedServer) prefetch(ab *applyBatch, batch []multiraft.GroupEntries) ([][]decoded, error) {
	decs := make([][]decoded, len(batch))
	var keys [][]byte
	for i, ge := range batch {
		r := s.rep(ge.Group)
		if r == nil || r.failed {
			continue
		}
		applied, _ := r.progress()
		decs[i], keys = decodeEntries(r.sh, ge.Entries, applied, keys)
	}
	return decs, ab.prefetch(keys)
}

// decodeEntries decodes the commands of ents past applied, one per entry
// (zero for the entries that carry none), and appends to keys the data
// keys of sh they read.
func decodeEntries(sh shard, ents []raftpb.Entry, applied uint64, keys [][]byte) ([]decoded, [][]byte) {
	dec := make([]decoded, len(ents))
	for i, e := range ents {
		if e.Index <= applied || e.Type != raftpb.EntryNormal || len(e.Data) == 0 {
			continue
		}
		d := &dec[i]
		if d.c, d.err = decodeCommand(e.Data); d.err == nil && d.c.Op != opHello {
			keys = append(keys, sh.dataKey(d.c.Key))
		}
	}
	return dec, keys
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

// stagedShard is a shard's part of a round's store batch: its new
// applied index and key count, and what becomes true once the batch is
// committed.
type stagedShard struct {
	r          *shardRep
	applied    uint64
	keys       uint64
	cfgChanged bool
	answers    []reqAnswer
}

// applyShard applies one shard's committed entries in a store batch of
// their own (the host's Apply; ApplyRound shares one batch among the
// round's shards).
func (s *ShardedServer) applyShard(r *shardRep, ents []raftpb.Entry) error {
	ab := s.store.newRoundBatch()
	defer ab.close()
	st, err := s.stageShard(ab, r, ents, nil)
	if err != nil || st == nil {
		return err
	}
	if err := ab.commitRound(); err != nil {
		return fmt.Errorf("writing to the state store: %w", err)
	}
	return s.finishShard(st)
}

// stageShard adds a shard's committed entries, with its new applied index
// (and configuration, if it changed or the store has none yet), to the
// batch ab, and returns what to do once ab is committed; nil if the
// entries were all applied before.
//
// dec, if not nil, holds the entries' commands decoded by prefetch (one
// per entry, same order).
func (s *ShardedServer) stageShard(ab *applyBatch, r *shardRep, ents []raftpb.Entry, dec []decoded) (*stagedShard, error) {
	applied, keys := r.progress()
	if len(ents) == 0 || ents[len(ents)-1].Index <= applied {
		return nil, nil
	}
	if h := s.cfg.hooks; h != nil && h.beforeApply != nil {
		if err := h.beforeApply(ents); err != nil {
			return nil, err
		}
	}
	ab.switchShard(r.sh, keys)
	st := &stagedShard{r: r}
	for i, e := range ents {
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
		var c command
		var err error
		if dec != nil {
			c, err = dec[i].c, dec[i].err
		} else {
			c, err = decodeCommand(e.Data)
		}
		if err != nil {
			s.lg.Error("skipping undecodable entry", zap.Int("shard", r.idx), zap.Uint64("index", e.Index), zap.Error(err))
			continue
		}
		var out outcome
		if c.Op == opHello {
			var changed bool
			out, changed = r.hello(c)
			st.cfgChanged = st.cfgChanged || changed
		} else {
			res, err := ab.apply(c)
			if err != nil {
				return nil, err
			}
			out.res = res
		}
		if c.Node == s.cfg.ID {
			st.answers = append(st.answers, reqAnswer{c.Req, out})
		}
	}
	var cfg *shardConfig
	if st.cfgChanged || !r.inStore {
		cfg = &r.cfg
	}
	if err := ab.putMeta(applied, cfg); err != nil {
		return nil, fmt.Errorf("writing to the state store: %w", err)
	}
	st.applied, st.keys = applied, ab.keys
	return st, nil
}

// finishShard records a staged shard's new state once its batch is
// committed: applied index, answers, and a snapshot when due.
func (s *ShardedServer) finishShard(st *stagedShard) error {
	r := st.r
	r.inStore = true
	r.setApplied(st.applied, st.keys, false)
	if st.cfgChanged && !s.ready.Load() {
		// The cluster's shard count, recorded by the first hello: the
		// member serves if it is its own (see hello.go).
		if err := s.checkRecordedCount(); err != nil {
			s.fail(err)
		}
	}
	s.answer(st.answers)
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

// restoreShard replaces the shard with a snapshot's state (inline or
// spooled, see sharded_snap.go) and makes the store durable.
func (s *ShardedServer) restoreShard(r *shardRep, snap raftpb.Snapshot) error {
	index := snap.Metadata.Index
	s.dataMu.RLock()
	if s.closed {
		s.dataMu.RUnlock()
		return ErrStopped
	}
	s.installMu[r.idx].Lock()
	hdr, err := s.installShard(r, snap)
	if err == nil {
		err = s.store.sync()
	}
	s.installMu[r.idx].Unlock()
	s.dataMu.RUnlock()
	if err != nil {
		return fmt.Errorf("kvservice: shard %d: installing the snapshot at %d: %w", r.idx, index, err)
	}
	r.cfg, r.inStore = hdr.Config, true
	r.setApplied(hdr.applied(), hdr.Keys, true)
	s.m.snapshotsApplied.Inc()
	s.lg.Info("installed a shard snapshot", zap.Int("shard", r.idx), zap.Uint64("index", index),
		zap.Uint64("applied", hdr.applied()), zap.Uint64("keys", hdr.Keys))
	return nil
}

// maybeSnapshot snapshots the shard once SnapshotCount entries were applied
// since its last snapshot, and lets the host compact its log. It runs on
// the worker holding the shard, so nothing changes the shard meanwhile.
// A large shard's snapshot is a descriptor, streamed when a follower
// needs it (see sharded_snap.go).
func (s *ShardedServer) maybeSnapshot(r *shardRep) error {
	r.mu.Lock()
	applied, keys, last := r.applied, r.keys, r.snapIndex
	if applied-last < s.cfg.SnapshotCount {
		r.mu.Unlock()
		return nil
	}
	r.snapIndex = applied // taken or tried: the next try is SnapshotCount later
	r.mu.Unlock()
	data, err := s.takeSnapshot(r, applied, keys)
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
