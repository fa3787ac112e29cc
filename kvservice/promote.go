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
