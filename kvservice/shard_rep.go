package kvservice

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"

	"github.com/raftkit/raft/multiraft"
)

// shardRep is a ShardedServer's replica of one shard: its part of the
// store and what the server knows of it.
type shardRep struct {
	idx int
	sh  shard

	// cfg is owned by the host's worker holding the shard's group (Apply
	// and Restore), and by createShards before the group exists.
	cfg shardConfig
	// inStore says the store has the shard's meta keys (all three); the
	// first batch of a new shard writes the configuration too.
	inStore bool

	mu sync.Mutex
	// Guarded by mu. Invariant: the store holds the shard as of applied,
	// with keys user keys.
	applied   uint64
	keys      uint64
	snapIndex uint64 // where the last snapshot was taken (or tried)
	lead      uint64 // the leader as last seen by watchLeaders
	waiters   []appliedWaiter
	// failed is set once an apply failed: nothing more is applied, so
	// that a restart replays from the last applied index.
	failed bool

	// moves counts the leadership transfers this member asked for, to
	// place the shard on its preferred member.
	moves atomic.Uint64
}

func newShardRep(st *stateStore, idx int, cfg shardConfig) *shardRep {
	return &shardRep{idx: idx, sh: shard{st: st, group: uint64(idx) + 1}, cfg: cfg}
}

// group is the raft group of the shard: its index plus one (zero is not a
// group ID).
func (r *shardRep) group() multiraft.GroupID { return multiraft.GroupID(r.sh.group) }

// load reads the shard's applied index, key count and configuration from
// the store; a shard the store does not have yet starts empty.
func (r *shardRep) load() error {
	meta, err := r.sh.load()
	if errors.Is(err, errNoShard) {
		return nil
	}
	if err != nil {
		return err
	}
	r.inStore = true
	members := r.cfg.Members
	r.cfg = meta.cfg
	if r.cfg.Members == nil {
		r.cfg.Members = members
	}
	r.mu.Lock()
	r.applied, r.keys, r.snapIndex = meta.applied, meta.keys, meta.applied
	r.mu.Unlock()
	return nil
}

func (r *shardRep) progress() (applied, keys uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.applied, r.keys
}

func (r *shardRep) leader() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lead
}

// setLead records the leader seen and returns the previous one.
func (r *shardRep) setLead(lead uint64) (old uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	old, r.lead = r.lead, lead
	return old
}

// setApplied records a new applied index (after the store has it) and
// wakes the reads waiting for it.
func (r *shardRep) setApplied(applied, keys uint64, snapshot bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.applied, r.keys = applied, keys
	if snapshot {
		r.snapIndex = applied
	}
	r.waiters = releaseApplied(r.waiters, r.applied)
}

// waitApplied returns once the shard applied index, or fails with the
// context or when stop closes.
func (r *shardRep) waitApplied(ctx context.Context, index uint64, stop <-chan struct{}) error {
	r.mu.Lock()
	if r.applied >= index {
		r.mu.Unlock()
		return nil
	}
	w := appliedWaiter{index: index, ch: make(chan struct{})}
	r.waiters = append(r.waiters, w)
	r.mu.Unlock()
	select {
	case <-w.ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-stop:
		return ErrStopped
	}
}
