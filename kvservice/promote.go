package kvservice

import (
	"context"
	"fmt"

	"go.uber.org/zap"

	"github.com/raftkit/raft"
	"github.com/raftkit/raft/raftpb"
)

// Members join as learners: a learner receives the log but does not vote
// and does not count towards the commit quorum, so adding a member that is
// not started yet (or is slow to catch up) costs the cluster no
// availability. The leader promotes a learner to voter once its match index
// is within LearnerPromoteLag entries of the leader's last index; an
// operator may also ask for the promotion (POST /v1/members/{id}/promote),
// which is refused while the learner lags further behind.

// promoteCheckTicks is how often (in ticks) the leader looks for learners
// ready to be promoted.
const promoteCheckTicks = 5

// maybePromoteLearners runs on the loop every promoteCheckTicks ticks: on
// the leader, it starts the promotion of the first caught-up learner. One
// promotion at a time: raft takes one conf change at a time anyway.
func (s *Server) maybePromoteLearners() {
	if !s.promoting.CompareAndSwap(false, true) {
		return
	}
	st := s.node.Status()
	id, ok := s.caughtUpLearner(st)
	if !ok {
		s.promoting.Store(false)
		return
	}
	go func() {
		defer s.promoting.Store(false)
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.RequestTimeout)
		defer cancel()
		if _, err := s.promote(ctx, id); err != nil {
			s.lg.Warn("promoting a caught-up learner", zap.Uint64("id", id), zap.Error(err))
			return
		}
		s.lg.Info("learner caught up; promoted to voter", zap.Uint64("id", id))
	}()
}

// caughtUpLearner returns a learner, in ID order, whose match index is
// within LearnerPromoteLag of the leader's. Only a leader knows.
func (s *Server) caughtUpLearner(st raft.Status) (uint64, bool) {
	if st.RaftState != raft.StateLeader {
		return 0, false
	}
	last := st.Progress[st.ID].Match
	var best uint64
	for id, pr := range st.Progress {
		if pr.IsLearner && pr.Match+s.cfg.LearnerPromoteLag >= last && pr.Match > 0 && (best == 0 || id < best) {
			best = id
		}
	}
	return best, best != 0
}

// PromoteMember makes learner id a voter. It is refused (ErrNotCaughtUp)
// while the learner's log lags the leader's by more than LearnerPromoteLag
// entries, and must be asked of the leader, the only member that knows how
// far each learner got (ErrNotLeader elsewhere).
func (s *Server) PromoteMember(ctx context.Context, id uint64) ([]Member, error) {
	s.mu.RLock()
	_, member := s.state.Members[id]
	lead := s.lead
	s.mu.RUnlock()
	if !member {
		return nil, fmt.Errorf("%w: %d", ErrUnknownMember, id)
	}
	st := s.node.Status()
	if st.RaftState != raft.StateLeader {
		return nil, fmt.Errorf("%w: ask the leader (%d)", ErrNotLeader, lead)
	}
	pr, ok := st.Progress[id]
	switch {
	case !ok:
		return nil, fmt.Errorf("%w: %d", ErrUnknownMember, id)
	case !pr.IsLearner:
		return s.Members(), nil // already a voter
	case pr.Match+s.cfg.LearnerPromoteLag < st.Progress[st.ID].Match:
		return nil, fmt.Errorf("%w: learner %d has index %d, leader %d (bound %d)",
			ErrNotCaughtUp, id, pr.Match, st.Progress[st.ID].Match, s.cfg.LearnerPromoteLag)
	}
	return s.promote(ctx, id)
}

// promote proposes turning learner id into a voter.
func (s *Server) promote(ctx context.Context, id uint64) ([]Member, error) {
	s.mu.RLock()
	m, ok := s.state.Members[id]
	s.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("%w: %d", ErrUnknownMember, id)
	}
	return s.changeMembers(ctx, raftpb.ConfChangeAddNode, m)
}

// With shards, a learner promotes itself: it alone knows how far it
// applied each shard (a shard's leader knows only its own shard's
// progress), and PromoteMember already has the learner decide. Every
// watchAllTicks ticks, a member that is a learner of some shards and a
// member of all of them, and whose replicas applied, as far as they know,
// every shard's commits within LearnerPromoteLag, asks PromoteMember of
// itself (which checks with each shard's leader). One attempt at a time;
// a member some shard removed never tries. Promoting is idempotent: a
// shard where the member is a voter already is left as it is.

// maybePromoteSelf starts this member's promotion if it looks caught up;
// it runs on the watch loop and does not block.
func (s *ShardedServer) maybePromoteSelf() {
	if !s.ready.Load() || !s.learnerOfEveryShard() || !s.caughtUpLocally() {
		return
	}
	if !s.book.promoting.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer s.book.promoting.Store(false)
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.RequestTimeout)
		defer cancel()
		if _, err := s.PromoteMember(ctx, s.cfg.ID); err != nil {
			s.lg.Info("promoting this learner once caught up: not yet", zap.Error(err))
			return
		}
		s.lg.Info("learner caught up with every shard; promoted to voter")
	}()
}

// learnerOfEveryShard reports whether this member is in every shard's
// configuration, as a learner in some, and was removed by none.
func (s *ShardedServer) learnerOfEveryShard() bool {
	learner := false
	for i := range s.reps {
		in, voter := s.book.shardHas(i, s.cfg.ID)
		if !in {
			return false
		}
		learner = learner || !voter
	}
	return learner && !s.book.removed(s.cfg.ID)
}

// caughtUpLocally reports whether, in every shard where this member is a
// learner, it applied its replica's commit index within
// LearnerPromoteLag: a cheap test before asking the shards' leaders.
func (s *ShardedServer) caughtUpLocally() bool {
	for i, r := range s.reps {
		if _, voter := s.book.shardHas(i, s.cfg.ID); voter {
			continue
		}
		gs, err := s.host.Status(r.group())
		applied, _ := r.progress()
		if err != nil || gs.Commit == 0 || applied+s.cfg.LearnerPromoteLag < gs.Commit {
			return false
		}
	}
	return true
}
