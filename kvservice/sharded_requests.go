package kvservice

import (
	"context"
	"fmt"

	"go.uber.org/zap"

	"github.com/raftkit/raft"
)

func (s *ShardedServer) propose(ctx context.Context, c command) (Result, error) {
	if c.Key == "" {
		return Result{}, fmt.Errorf("%w: missing key", ErrInvalid)
	}
	i := ShardOf(c.Key, len(s.reps))
	if err := s.checkServing(i); err != nil {
		return Result{}, err
	}
	out, err := s.proposeTo(ctx, i, c)
	return out.res, err
}

// proposeTo proposes c to shard i through this member's replica (raft
// forwards it to the shard's leader) and waits for its outcome.
func (s *ShardedServer) proposeTo(ctx context.Context, i int, c command) (outcome, error) {
	c.Node, c.Req = s.cfg.ID, s.reqSeq.Add(1)
	data := encodeCommand(c)
	ctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
	defer cancel()
	ch := make(chan outcome, 1)
	s.mu.Lock()
	s.proposals[c.Req] = shardWaiter{shard: i, lead: s.leaderNow(i), ch: ch}
	s.mu.Unlock()
	forget := func() {
		s.mu.Lock()
		delete(s.proposals, c.Req)
		s.mu.Unlock()
	}
	s.m.proposals.Inc()
	if err := s.host.Propose(s.reps[i].group(), data); err != nil {
		forget()
		s.m.proposalsFailed.Inc()
		return outcome{}, ErrStopped
	}
	return awaitOutcome(ctx, ch, s.m, forget)
}

// checkServing refuses requests to shard i while the member is stopped,
// has not confirmed its shard count, or knows no leader for the shard.
func (s *ShardedServer) checkServing(i int) error {
	select {
	case <-s.donec:
		return ErrStopped
	case <-s.stopc:
		return ErrStopped
	default:
	}
	if !s.ready.Load() {
		return fmt.Errorf("%w (this member has not yet confirmed its shard count with the cluster)", ErrNoLeader)
	}
	if s.reps[i].leader() == 0 && s.leaderNow(i) == 0 {
		return fmt.Errorf("%w (shard %d)", ErrNoLeader, i)
	}
	return nil
}

// leaderNow returns shard i's leader as the host sees it now (the watch's
// view may be a few ticks old).
func (s *ShardedServer) leaderNow(i int) uint64 {
	lead, err := s.host.Leader(s.reps[i].group())
	if err != nil {
		return 0
	}
	return lead
}

// Get returns the value of key from its shard; see Server.Get for the
// two kinds of reads. A linearizable read asks the shard's leader for a
// read index through the host.
func (s *ShardedServer) Get(ctx context.Context, key string, serializable bool) (string, bool, error) {
	if key == "" {
		return "", false, fmt.Errorf("%w: missing key", ErrInvalid)
	}
	i := ShardOf(key, len(s.reps))
	if serializable {
		if !s.ready.Load() {
			return "", false, s.checkServing(i)
		}
	} else if err := s.linearize(ctx, i); err != nil {
		return "", false, err
	}
	s.dataMu.RLock()
	defer s.dataMu.RUnlock()
	if s.closed {
		return "", false, ErrStopped
	}
	s.installMu[i].RLock()
	defer s.installMu[i].RUnlock()
	v, ok, err := s.reps[i].sh.get(key)
	if err != nil {
		s.lg.Error("reading the state store", zap.String("key", key), zap.Error(err))
		return "", false, fmt.Errorf("kvservice: reading the state store: %w", err)
	}
	return v, ok, nil
}

// linearize returns once this member's replica of shard i applied
// everything the shard committed before the call.
func (s *ShardedServer) linearize(ctx context.Context, i int) error {
	if err := s.checkServing(i); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
	defer cancel()
	index, err := s.shardReadIndex(ctx, i, false)
	if err != nil {
		return err
	}
	if index == 0 || s.reps[i].waitApplied(ctx, index, s.donec) != nil {
		s.m.readsFailed.Inc()
		return ErrReadTimeout
	}
	return nil
}

// shardReadIndex asks shard i's leader for a read index and waits for it
// (see awaitReadIndex): 0 if none came before ctx ended or a leader change
// failed the read (see failShard), ErrStopped if the member stopped. With
// again, a read failed by a leader change is asked of the new leader,
// under the same context, until ctx ends.
func (s *ShardedServer) shardReadIndex(ctx context.Context, i int, again bool) (uint64, error) {
	rctx, ch := newRead(s.cfg.ID, &s.reqSeq, s.m)
	defer func() {
		s.mu.Lock()
		delete(s.reads, string(rctx))
		s.mu.Unlock()
	}()
	var askErr error
	ask := func() error { askErr = s.host.ReadIndex(s.reps[i].group(), rctx); return askErr }
	for {
		s.mu.Lock()
		s.reads[string(rctx)] = shardReadWaiter{shard: i, lead: s.leaderNow(i), ch: ch}
		s.mu.Unlock()
		index, err := awaitReadIndex(ctx, ask, ch, readRetryPeriod(&s.cfg), s.donec)
		if err != nil || index != 0 || !again || askErr != nil || ctx.Err() != nil {
			return index, err
		}
	}
}

// Members returns the members of any shard (as this member's replicas
// applied their configurations), sorted by ID.
func (s *ShardedServer) Members() []Member { return s.book.members() }

// ShardStatus is one shard's state on a member, in Status.Shards.
type ShardStatus struct {
	ID       int      `json:"id"`
	State    string   `json:"state"`
	Leader   uint64   `json:"leader"`
	Term     uint64   `json:"term"`
	Commit   uint64   `json:"commit"`
	Applied  uint64   `json:"applied"`
	Keys     int      `json:"keys"`
	Quiesced bool     `json:"quiesced,omitempty"`
	Voters   []uint64 `json:"voters"`
	Learners []uint64 `json:"learners,omitempty"`
}

// Status returns the member's view: every shard in Shards, with its
// voters and learners as this member applied them; Leader and Term are
// shard 0's (Leader 0 until the member serves, see hello.go), Commit,
// Applied and Keys the sums over the shards; Voters are the members that
// are voters of every shard, Learners those that are learners of some.
func (s *ShardedServer) Status() Status {
	st := Status{ID: s.cfg.ID, ClusterID: fmt.Sprintf("%x", s.cfg.ClusterID), State: "Sharded",
		Members: s.Members(), Shards: make([]ShardStatus, len(s.reps))}
	st.Voters, st.Learners = s.book.roles()
	for i, r := range s.reps {
		gs, _ := s.host.Status(r.group())
		applied, keys := r.progress()
		cs := s.book.conf(i)
		st.Shards[i] = ShardStatus{ID: i, State: gs.RaftState.String(), Leader: gs.Lead, Term: gs.Term,
			Commit: gs.Commit, Applied: applied, Keys: int(keys), Quiesced: gs.Quiesced,
			Voters: cs.Voters, Learners: cs.Learners}
		st.Commit += gs.Commit
		st.Applied += applied
		st.Keys += int(keys)
	}
	st.Leader, st.Term = st.Shards[0].Leader, st.Shards[0].Term
	if !s.ready.Load() {
		st.Leader = 0 // serving nothing yet: as good as no leader
	}
	return st
}

// watchAllTicks is how often (in ticks) watchLeaders looks at every
// shard; in between it looks only at the shards with requests in flight,
// which a leader change must fail at once. With a thousand shards, a
// status per shard per tick is a few percent of a member's CPU.
const watchAllTicks = 5

// watchLeaders notes the shards' leaders: a change fails the proposals
// and reads in flight in that shard (their leader may have lost them, so
// their outcome is unknown, as Server does). With all, every shard is
// looked at, and a leaderless shard's preferred member campaigns; with
// place, a shard this member leads but should not moves to its preferred
// member, if that one was heard from recently, unless it was moved here by
// hand (see TransferShards). With all, a learner caught up with every
// shard also starts its own promotion (see maybePromoteSelf).
func (s *ShardedServer) watchLeaders(all, place bool) {
	for _, i := range s.shardsToWatch(all) {
		r := s.reps[i]
		gs, err := s.host.Status(r.group())
		if err != nil {
			continue
		}
		if old := r.setLead(gs.Lead); old != gs.Lead {
			if gs.Lead != 0 {
				s.m.leaderChanges.Inc()
			}
			if old != 0 {
				s.failShard(i, gs.Lead)
			}
		}
		// A hand-placed shard whose leadership was lost is placed as
		// usual again (a hold is for one term: see pullShards).
		s.book.expire(i, gs.Term)
		preferred := s.preferred(i) == s.cfg.ID
		switch {
		case all && gs.Lead == 0 && preferred && gs.RaftState == raft.StateFollower:
			// A leaderless shard: its preferred member stands first
			// (the campaign at creation may have found its peers
			// without the group yet).
			_ = s.host.Campaign(r.group())
		case place && gs.RaftState == raft.StateLeader && !preferred && !s.book.isHeld(i, gs.Term) && s.heardRecently(s.preferred(i)):
			r.moves.Add(1)
			_ = s.host.TransferLeader(r.group(), s.preferred(i))
		}
	}
	if all {
		s.maybePromoteSelf()
	}
}

// heardRecently reports whether this member's host heard from member id
// within half an election timeout (peer hosts ping each other every
// heartbeat). A shard only moves to a member heard that recently: the host
// counts a silent member as failed only after HostTimeoutTicks (two
// election timeouts), and a shard moved to a member that just died
// stalls: raft drops every proposal while a leadership transfer is
// pending, for up to an election timeout, and the clients waiting on them
// get no answer before their request timeout. (A shard re-elected because
// its preferred member died was moved straight back to it that way.)
func (s *ShardedServer) heardRecently(id uint64) bool {
	return s.host.PeerHeardWithin(id, max(1, s.cfg.ElectionTicks/2))
}

// shardsToWatch returns every shard's index, or, unless all, those of the
// shards with proposals or reads in flight.
func (s *ShardedServer) shardsToWatch(all bool) []int {
	if all {
		out := make([]int, len(s.reps))
		for i := range out {
			out[i] = i
		}
		return out
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	seen := make(map[int]bool, len(s.proposals)+len(s.reads))
	var out []int
	add := func(i int) {
		if !seen[i] {
			seen[i] = true
			out = append(out, i)
		}
	}
	for _, w := range s.proposals {
		add(w.shard)
	}
	for _, w := range s.reads {
		add(w.shard)
	}
	return out
}

// failShard answers shard i's proposals and reads in flight that were made
// under another leader than lead, the shard's new one: those made since
// the change (the watch sees it late) are in the new leader's hands.
func (s *ShardedServer) failShard(i int, lead uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, w := range s.proposals {
		if w.shard == i && (w.lead != lead || lead == 0) {
			w.ch <- outcome{err: ErrLeaderChanged}
			delete(s.proposals, id)
		}
	}
	for k, w := range s.reads {
		if w.shard == i && (w.lead != lead || lead == 0) {
			w.ch <- 0
			delete(s.reads, k)
		}
	}
}
