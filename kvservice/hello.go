package kvservice

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"go.uber.org/zap"
)

// Every member of a sharded cluster must split the key space the same way,
// or two members would put one key in two shards. A data directory keeps
// the count it was created with (meta.json), and the members check the
// count with each other through shard 0's log: on every start, a member
// proposes a hello entry naming its count. The first hello applied records
// the cluster's count in shard 0's configuration (in the store, and in its
// snapshots); a later hello with another count is refused, on every member
// alike, and the member that proposed it stops with ErrShardCount. A
// member serves no request before it knows the cluster's count is its own:
// its hello was accepted, or it applied the record (another member's
// hello, or its own replayed after a restart), or, on a restart, it found
// the record in its store (then it serves at once, even before it reaches
// a leader).

// ErrShardCount: the member was started with another shard count than the
// cluster's.
var ErrShardCount = errors.New("kvservice: shard count differs from the cluster's")

// opHello is the op of a hello entry; its value is the shard count.
const opHello = "hello"

// hello applies a hello entry: it records the count if none was, and says
// whether the entry's count is the recorded one (Result.Prev holds it).
func (r *shardRep) hello(c command) (out outcome, changed bool) {
	n, err := strconv.Atoi(c.Value)
	if err != nil || n < 1 {
		return outcome{res: Result{Prev: strconv.Itoa(r.cfg.Shards)}}, false
	}
	if r.cfg.Shards == 0 {
		r.cfg.Shards, changed = n, true
	}
	return outcome{res: Result{Succeeded: r.cfg.Shards == n, Prev: strconv.Itoa(r.cfg.Shards)}}, changed
}

// sayHello proposes this member's hello until it is applied, then opens
// the member to requests, or stops it on a mismatch.
func (s *ShardedServer) sayHello() {
	c := command{Op: opHello, Value: strconv.Itoa(s.cfg.Shards)}
	for {
		select {
		case <-s.stopc:
			return
		case <-time.After(s.cfg.TickInterval):
		}
		if s.ready.Load() {
			return // found the cluster's count applying another's hello
		}
		if s.reps[0].leader() == 0 {
			continue
		}
		out, err := s.proposeTo(context.Background(), 0, c)
		if err != nil {
			continue
		}
		if !out.res.Succeeded {
			s.fail(fmt.Errorf("%w: the cluster runs %s shards, this member was started with %d "+
				"(every member must be given the same --shards)", ErrShardCount, out.res.Prev, s.cfg.Shards))
			return
		}
		s.ready.Store(true)
		s.lg.Info("shard count confirmed by the cluster; serving", zap.Int("shards", s.cfg.Shards))
		return
	}
}
