package kvservice

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"

	"go.uber.org/zap"
)

// Leader transfers with shards. A member places each shard's leader itself
// (shard i on its i-th voter, see ShardedServer.preferred), and the placement
// runs on the shard's leader: a shard moved to member N by hand would move
// straight back unless N knows to keep it. So the transferee does the work:
// it pulls the shards' leadership (raft forwards a follower's transfer
// request, naming itself, to the shard's leader) and holds them, that is,
// its placement leaves them where they are until it loses their leadership
// or restarts. A member asked to move shards to another forwards the
// request to it over the HTTP API, naming the shards.

// TransferLeader moves the leadership of every shard this member leads to
// member to; see TransferShards.
func (s *ShardedServer) TransferLeader(ctx context.Context, to uint64) error {
	return s.TransferShards(ctx, to, nil)
}

// TransferShards moves the leadership of the shards listed (nil: every
// shard this member leads now) to member to, and returns once this member
// sees to lead each of them. Member to keeps them (its placement leaves
// them be) until it loses their leadership or restarts. Errors:
// ErrUnknownMember (to is not a member of every shard listed), ErrInvalid
// (a shard index out of range or repeated, or to is a learner of a shard
// listed: only a voter can lead), ErrAskMember (with HTTPS, for a member
// other than to: ask to itself, the error says how), and a ShardsError
// wrapping ErrTimeout when some shards did not move within the request
// timeout (repeating the request finishes it).
func (s *ShardedServer) TransferShards(ctx context.Context, to uint64, shards []int) error {
	shards, err := s.transferTargets(to, shards)
	if err != nil || len(shards) == 0 {
		return err
	}
	if to == s.cfg.ID {
		return s.pullShards(ctx, shards)
	}
	return s.forwardTransfer(ctx, to, shards)
}

// transferTargets checks a transfer to member to and returns the shards
// it moves, sorted: those listed, or, for nil, those this member leads.
func (s *ShardedServer) transferTargets(to uint64, shards []int) ([]int, error) {
	if !slices.ContainsFunc(s.book.members(), func(m Member) bool { return m.ID == to }) {
		return nil, fmt.Errorf("%w: %d", ErrUnknownMember, to)
	}
	if shards == nil {
		for i := range s.reps {
			if s.leaderNow(i) == s.cfg.ID {
				shards = append(shards, i)
			}
		}
	}
	shards = slices.Clone(shards)
	slices.Sort(shards)
	for k, i := range shards {
		switch {
		case i < 0 || i >= len(s.reps):
			return nil, fmt.Errorf("%w: shard %d: this cluster has shards 0 to %d", ErrInvalid, i, len(s.reps)-1)
		case k > 0 && shards[k-1] == i:
			return nil, fmt.Errorf("%w: shard %d listed twice", ErrInvalid, i)
		}
		switch in, voter := s.book.shardHas(i, to); {
		case !in:
			return nil, fmt.Errorf("%w: %d is not a member of shard %d", ErrUnknownMember, to, i)
		case !voter:
			return nil, fmt.Errorf("%w: member %d is a learner of shard %d: only a voter can lead", ErrInvalid, to, i)
		}
	}
	return shards, nil
}

// pullShards makes this member the leader of shards and holds them. The
// request is repeated every election timeout (raft's leader gives up a
// transfer after one, and a forwarded request can be lost); the shards
// not led here at the end are let go again. A shard is held from the
// start, in whatever term, and once led here only in the term of that
// leadership: a loss this member's watch notices late (one from before
// the pull, as when the placement had just moved the shard away) cannot
// end the hold, and a leadership lost and won back by an election is not
// held.
func (s *ShardedServer) pullShards(ctx context.Context, shards []int) error {
	s.book.hold(shards)
	done := func(i int) bool { return s.leaderNow(i) == s.cfg.ID }
	err := s.untilShards(ctx, "transfer", s.cfg.ID, shards, done, func(i int) {
		_ = s.host.TransferLeader(s.reps[i].group(), s.cfg.ID)
	})
	won := shards
	var se *ShardsError
	if errors.As(err, &se) {
		s.book.release(se.Pending)
		won = se.Done
	}
	for _, i := range won {
		gs, serr := s.host.Status(s.reps[i].group())
		if serr != nil || gs.Lead != s.cfg.ID {
			s.book.release([]int{i}) // lost again already: placed as usual
			continue
		}
		s.book.settle(i, gs.Term)
	}
	if err == nil {
		s.lg.Info("took over the leadership of shards, held until lost", zap.Ints("shards", shards))
	}
	return err
}

// forwardTransfer asks member to, over its HTTP API, to pull shards, then
// waits until this member sees it lead each. With HTTPS it answers
// ErrAskMember instead (as forwardPromote does, for the same reason).
func (s *ShardedServer) forwardTransfer(ctx context.Context, to uint64, shards []int) error {
	ms := s.book.members()
	m := ms[slices.IndexFunc(ms, func(m Member) bool { return m.ID == to })] // transferTargets checked it
	if s.cfg.HTTPTLS != nil {
		list, _ := json.Marshal(shards)
		return fmt.Errorf(`%w: ask member %d at its own address, %s: POST /v1/leader {"to": %d, "shards": %s}`,
			ErrAskMember, to, m.HTTPAddr, to, list)
	}
	fctx, cancel := context.WithTimeout(ctx, s.forwardTimeout())
	err := (&Client{Token: s.cfg.AdminToken}).TransferShards(fctx, m.HTTPAddr, to, shards)
	cancel()
	var ae *APIError
	switch {
	case errors.As(err, &ae) && ae.Code == http.StatusGatewayTimeout:
		return &ShardsError{Op: "transfer", ID: to, Done: ae.ShardsDone, Pending: ae.ShardsPending,
			Err: fmt.Errorf("%w (member %d: %s)", ErrTimeout, to, ae.ErrorResponse.Error)}
	case errors.As(err, &ae) && ae.Code == http.StatusBadRequest:
		return fmt.Errorf("%w (member %d: %s)", ErrInvalid, to, ae.ErrorResponse.Error)
	case errors.As(err, &ae) && ae.Code == http.StatusNotFound:
		return fmt.Errorf("%w (member %d: %s)", ErrUnknownMember, to, ae.ErrorResponse.Error)
	case err != nil:
		return fmt.Errorf("%w: forwarding the transfer to member %d at %s failed (%v); ask it there",
			ErrAskMember, to, m.HTTPAddr, err)
	}
	done := func(i int) bool { return s.leaderNow(i) == to }
	return s.untilShards(ctx, "transfer", to, shards, done, func(int) {})
}

// hold marks shards as placed by hand on this member while a transfer
// to it runs: held in any term (see isHeld).
func (b *memberBook) hold(shards []int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, i := range shards {
		b.held[i] = 0
	}
}

// settle holds shard i, if it is held, only while this member leads it in
// term: the leadership its transfer won.
func (b *memberBook) settle(i int, term uint64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.held[i]; ok {
		b.held[i] = term
	}
}

// release lets the placement move shards again.
func (b *memberBook) release(shards []int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, i := range shards {
		delete(b.held, i)
	}
}

// expire drops shard i's hold once the shard is in a later term than the
// leadership the hold was for; a transfer still running keeps its hold.
func (b *memberBook) expire(i int, term uint64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if t, ok := b.held[i]; ok && t != 0 && term > t {
		delete(b.held, i)
	}
}

// isHeld reports whether shard i, led by this member in term, was moved
// here by hand and has not lost that leadership since (or is being moved
// here now): the placement must leave it here.
func (b *memberBook) isHeld(i int, term uint64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	t, ok := b.held[i]
	return ok && (t == 0 || t == term)
}
