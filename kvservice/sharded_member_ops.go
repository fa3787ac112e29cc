package kvservice

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/raftkit/raft/raftpb"
)

// ErrAskMember: the request must be made to another member, named in the
// error (with shards and HTTPS, promoting a learner is asked of the
// learner itself, the only member that knows how far each of its shards
// got; see ShardedServer.PromoteMember).
var ErrAskMember = errors.New("ask another member")

// ShardsError is a membership change with shards that was not done in
// every shard. Each shard's step is idempotent: repeating the request does
// what is left. Done and Pending list shard indexes.
type ShardsError struct {
	Op      string // "add", "promote", "remove" or "transfer"
	ID      uint64 // the member changed
	Done    []int  // shards where the change holds
	Pending []int  // shards where it does not (yet)
	Err     error  // why it stopped: ErrTimeout, ErrNotCaughtUp, ErrStopped...
}

// Error says which shards the change holds in and which it does not.
func (e *ShardsError) Error() string {
	return fmt.Sprintf("%s member %d: done in shards %v, not in shards %v (repeat the request to finish): %v",
		e.Op, e.ID, e.Done, e.Pending, e.Err)
}

// Unwrap returns the cause.
func (e *ShardsError) Unwrap() error { return e.Err }

// AddMember adds m as a learner of every shard; m is then started with an
// empty Dir, the same Shards, and Join listing the members, and receives
// every shard. Adding an ID that is a member of every shard fails
// (ErrMemberExists), one some shards have (a change cut short) resumes.
func (s *ShardedServer) AddMember(ctx context.Context, m Member) ([]Member, error) {
	switch {
	case m.ID == 0:
		return nil, fmt.Errorf("%w: member ID must not be zero", ErrInvalid)
	case m.PeerAddr == "" || m.HTTPAddr == "":
		return nil, fmt.Errorf("%w: peer_addr and http_addr are required", ErrInvalid)
	case s.book.removed(m.ID):
		return nil, fmt.Errorf("%w: %d (start the new member under a new ID, on an empty data directory)", ErrMemberRemoved, m.ID)
	}
	s.confMu.Lock()
	defer s.confMu.Unlock()
	book := s.book.members()
	for _, o := range book {
		if o.ID == m.ID && o.PeerAddr == m.PeerAddr && !s.inEveryShard(m.ID, false) {
			continue // an addition cut short: finish it
		}
		if o.ID == m.ID || o.PeerAddr == m.PeerAddr {
			return nil, fmt.Errorf("%w: %d at %s", ErrMemberExists, o.ID, o.PeerAddr)
		}
	}
	cc, err := s.confChange(raftpb.ConfChangeAddLearnerNode, m, book)
	if err != nil {
		return nil, err
	}
	done := func(i int) bool { in, _ := s.book.shardHas(i, m.ID); return in }
	err = s.changeShards(ctx, "add", m.ID, done, func(i int) { _ = s.host.ProposeConfChange(s.reps[i].group(), cc) })
	return s.Members(), err
}

// confChange returns a configuration change of m, with a context naming
// this member's book.
func (s *ShardedServer) confChange(typ raftpb.ConfChangeType, m Member, book []Member) (raftpb.ConfChange, error) {
	ctx, err := json.Marshal(shardConfContext{Node: s.cfg.ID, Req: s.reqSeq.Add(1), Member: m, Book: book})
	if err != nil {
		return raftpb.ConfChange{}, err
	}
	return raftpb.ConfChange{Type: typ, NodeID: m.ID, Context: ctx}, nil
}

// inEveryShard reports whether id is in every shard's configuration (as a
// voter, with voter).
func (s *ShardedServer) inEveryShard(id uint64, voter bool) bool {
	for i := range s.reps {
		in, v := s.book.shardHas(i, id)
		if !in || voter && !v {
			return false
		}
	}
	return true
}

// changeShards drives one membership change over every shard until done
// holds for each, as this member's replicas applied the shards'
// configurations: it proposes (propose) to every shard not done, again
// after each election timeout without the change (raft drops a proposal
// without a leader or while another change is pending), until the request
// timeout. The shards are changed in parallel, each at most once at a
// time.
func (s *ShardedServer) changeShards(ctx context.Context, op string, id uint64, done func(i int) bool, propose func(i int)) error {
	return s.untilShards(ctx, op, id, s.allShards(), done, propose)
}

// allShards returns every shard's index.
func (s *ShardedServer) allShards() []int {
	out := make([]int, len(s.reps))
	for i := range out {
		out[i] = i
	}
	return out
}

// untilShards is changeShards over the shards listed only (also used for
// leader transfers, whose progress shows in the host's view of each
// shard's leader, looked at every tick).
func (s *ShardedServer) untilShards(ctx context.Context, op string, id uint64, shards []int, done func(i int) bool, propose func(i int)) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
	defer cancel()
	retry := time.Duration(s.cfg.ElectionTicks) * s.cfg.TickInterval
	tick := time.NewTicker(s.cfg.TickInterval)
	defer tick.Stop()
	var asked time.Time
	for {
		changed := s.book.changed()
		var finished, pending []int
		for _, i := range shards {
			if done(i) {
				finished = append(finished, i)
			} else {
				pending = append(pending, i)
			}
		}
		if len(pending) == 0 {
			return nil
		}
		if time.Since(asked) >= retry {
			for _, i := range pending {
				propose(i)
			}
			asked = time.Now()
		}
		select {
		case <-changed:
		case <-tick.C:
		case <-ctx.Done():
			return &ShardsError{Op: op, ID: id, Done: finished, Pending: pending, Err: ErrTimeout}
		case <-s.stopc:
			return &ShardsError{Op: op, ID: id, Done: finished, Pending: pending, Err: ErrStopped}
		}
	}
}

// RemoveMember removes member id from every shard. A shard id leads is
// first handed to another of its voters. The removed member stops once it
// learns of its removal (see noteRemovedFrom). Removing an ID every shard
// removed already succeeds (a repeated request); an ID no shard knows is
// ErrUnknownMember.
func (s *ShardedServer) RemoveMember(ctx context.Context, id uint64) ([]Member, error) {
	known := slices.ContainsFunc(s.book.members(), func(m Member) bool { return m.ID == id })
	if !known {
		if s.book.removed(id) {
			return s.Members(), nil
		}
		return nil, fmt.Errorf("%w: %d", ErrUnknownMember, id)
	}
	for i := range s.reps {
		if v := s.book.voters(i); len(v) == 1 && v[0] == id {
			return nil, fmt.Errorf("%w: member %d is shard %d's only voter", ErrInvalid, id, i)
		}
	}
	s.confMu.Lock()
	defer s.confMu.Unlock()
	cc, err := s.confChange(raftpb.ConfChangeRemoveNode, Member{ID: id}, nil)
	if err != nil {
		return nil, err
	}
	done := func(i int) bool { in, _ := s.book.shardHas(i, id); return !in }
	err = s.changeShards(ctx, "remove", id, done, func(i int) {
		g := s.reps[i].group()
		if s.leaderNow(i) == id {
			// Raft would leave a removed leader leading (it does
			// not step down on its removal): move the shard first.
			if to := s.successor(i, id); to != 0 {
				_ = s.host.TransferLeader(g, to)
			}
			return
		}
		_ = s.host.ProposeConfChange(g, cc)
	})
	return s.Members(), err
}

// successor returns the voter of shard i other than id that should lead
// it: its preferred member once id is gone, if this member heard from it
// recently, else the first such voter heard from; 0 if none.
func (s *ShardedServer) successor(i int, id uint64) uint64 {
	v := slices.DeleteFunc(s.book.voters(i), func(x uint64) bool { return x == id })
	if len(v) == 0 {
		return 0
	}
	for k := range v {
		c := v[(i+k)%len(v)]
		if c == s.cfg.ID || s.heardRecently(c) {
			return c
		}
	}
	return 0
}

// PromoteMember makes learner id a voter of every shard. The learner
// itself decides (another member forwards the request to it, see
// forwardPromote): it compares, shard by shard, what it applied with the
// shard leader's commit index (a read index); a shard where it lags by
// more than LearnerPromoteLag entries refuses the whole promotion
// (ErrNotCaughtUp, in a ShardsError naming the shards behind); otherwise
// every shard not yet promoted is.
func (s *ShardedServer) PromoteMember(ctx context.Context, id uint64) ([]Member, error) {
	members := s.book.members()
	k := slices.IndexFunc(members, func(m Member) bool { return m.ID == id })
	switch {
	case k < 0 && id != s.cfg.ID:
		// (This member, asked before it applied its addition to any
		// shard, answers ErrNotCaughtUp below.)
		return nil, fmt.Errorf("%w: %d", ErrUnknownMember, id)
	case s.inEveryShard(id, true):
		return members, nil
	case id != s.cfg.ID:
		return s.forwardPromote(ctx, members[k])
	}
	s.confMu.Lock()
	defer s.confMu.Unlock()
	if err := s.checkCaughtUp(ctx); err != nil {
		return nil, err
	}
	// Caught up in every shard, so a learner of every shard: in the book.
	members = s.book.members()
	if k = slices.IndexFunc(members, func(m Member) bool { return m.ID == id }); k < 0 {
		return nil, fmt.Errorf("%w: %d", ErrUnknownMember, id)
	}
	cc, err := s.confChange(raftpb.ConfChangeAddNode, members[k], nil)
	if err != nil {
		return nil, err
	}
	done := func(i int) bool { _, voter := s.book.shardHas(i, id); return voter }
	err = s.changeShards(ctx, "promote", id, done, func(i int) { _ = s.host.ProposeConfChange(s.reps[i].group(), cc) })
	return s.Members(), err
}

// checkCaughtUp returns a ShardsError (ErrNotCaughtUp) unless this member
// is, in every shard where it is a learner, within LearnerPromoteLag
// entries of the shard leader's commit index.
func (s *ShardedServer) checkCaughtUp(ctx context.Context) error {
	var learning, done, behind []int
	for i := range s.reps {
		switch in, voter := s.book.shardHas(i, s.cfg.ID); {
		case voter:
			done = append(done, i)
		case in:
			learning = append(learning, i)
		default:
			behind = append(behind, i) // not even a learner there yet
		}
	}
	indexes := s.leaderIndexes(ctx, learning)
	for _, i := range learning {
		applied, _ := s.reps[i].progress()
		if idx, ok := indexes[i]; !ok || applied+s.cfg.LearnerPromoteLag < idx {
			s.lg.Info("not caught up with a shard", zap.Int("shard", i), zap.Uint64("applied", applied),
				zap.Uint64("leader-commit", idx), zap.Bool("leader-answered", ok), zap.Uint64("leader", s.leaderNow(i)))
			behind = append(behind, i)
		}
	}
	if len(behind) == 0 {
		return nil
	}
	slices.Sort(behind)
	return &ShardsError{Op: "promote", ID: s.cfg.ID, Done: done, Pending: behind,
		Err: fmt.Errorf("%w: bound %d entries", ErrNotCaughtUp, s.cfg.LearnerPromoteLag)}
}

// leaderIndexes asks the leaders of shards for their commit index (a read
// index), all at once, and returns those that answered within the request
// timeout. Each shard's request is asked again as a client read's is (see
// awaitReadIndex), and of the new leader after a leader change.
func (s *ShardedServer) leaderIndexes(ctx context.Context, shards []int) map[int]uint64 {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
	defer cancel()
	var mu sync.Mutex
	var wg sync.WaitGroup
	out := make(map[int]uint64, len(shards))
	for _, i := range shards {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if idx, err := s.shardReadIndex(ctx, i, true); err == nil && idx != 0 {
				mu.Lock()
				out[i] = idx
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return out
}

// forwardPromote asks learner m, over its HTTP API, to promote itself (it
// alone knows how far each of its shards got), then waits until this
// member applied the promotion in every shard. With HTTPS it answers
// ErrAskMember instead: the members' HTTPS certificates need not chain to
// a CA this member trusts.
func (s *ShardedServer) forwardPromote(ctx context.Context, m Member) ([]Member, error) {
	if s.cfg.HTTPTLS != nil {
		return nil, fmt.Errorf("%w: promote learner %d at its own address, %s: only it knows how far it got in each shard",
			ErrAskMember, m.ID, m.HTTPAddr)
	}
	fctx, cancel := context.WithTimeout(ctx, s.forwardTimeout())
	err := (&Client{Token: s.cfg.AdminToken}).PromoteMember(fctx, m.HTTPAddr, m.ID)
	cancel()
	var ae *APIError
	switch {
	case errors.As(err, &ae) && ae.Code == http.StatusConflict:
		return nil, &ShardsError{Op: "promote", ID: m.ID, Done: ae.ShardsDone, Pending: ae.ShardsPending,
			Err: fmt.Errorf("%w (learner %d: %s)", ErrNotCaughtUp, m.ID, ae.ErrorResponse.Error)}
	case errors.As(err, &ae) && ae.Code == http.StatusGatewayTimeout:
		return nil, &ShardsError{Op: "promote", ID: m.ID, Done: ae.ShardsDone, Pending: ae.ShardsPending,
			Err: fmt.Errorf("%w (learner %d: %s)", ErrTimeout, m.ID, ae.ErrorResponse.Error)}
	case err != nil:
		return nil, fmt.Errorf("%w: forwarding the promotion to learner %d at %s failed (%v); ask it there",
			ErrAskMember, m.ID, m.HTTPAddr, err)
	}
	done := func(i int) bool { _, voter := s.book.shardHas(i, m.ID); return voter }
	err = s.changeShards(ctx, "promote", m.ID, done, func(int) {})
	return s.Members(), err
}

// forwardTimeout bounds a request forwarded to another member, which gives
// up after its own request timeout and then says which shards it got done
// (504): the wait is an election timeout longer, so that answer comes back.
func (s *ShardedServer) forwardTimeout() time.Duration {
	return s.cfg.RequestTimeout + time.Duration(s.cfg.ElectionTicks)*s.cfg.TickInterval
}
