package kvservice

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/raftkit/raft"
	"github.com/raftkit/raft/raftpb"
)

// Errors returned by the Server's operations. The HTTP API maps each to a
// status code (see Handler).
var (
	// ErrNoLeader: the cluster has no leader this node knows of; the
	// request was not proposed (a write was certainly not applied).
	ErrNoLeader = errors.New("no leader; request not applied, retry later")
	// ErrLeaderChanged: the leader changed while a write was in flight;
	// it may or may not have been applied.
	ErrLeaderChanged = errors.New("leader changed while the request was in flight; outcome unknown")
	// ErrTimeout: a write was not applied within the request timeout; it
	// may still be applied. For reads: no confirmation from a leader.
	ErrTimeout = errors.New("request timed out; outcome unknown")
	// ErrReadTimeout: a linearizable read was not confirmed by a leader in
	// time. Reads change nothing; retrying is safe.
	ErrReadTimeout = errors.New("linearizable read timed out waiting for the leader")
	// ErrStopped: the server is stopping.
	ErrStopped = errors.New("server stopped")
	// ErrRemoved: this member was removed from the cluster.
	ErrRemoved = errors.New("this member was removed from the cluster")
	// ErrUnknownMember: the member ID named in a request is not a member.
	ErrUnknownMember = errors.New("unknown member")
	// ErrMemberExists: a member with that ID (or peer address) exists.
	ErrMemberExists = errors.New("member already exists")
	// ErrMemberRemoved: the ID belonged to a member that was removed; IDs
	// are never reused. Add the machine again under a new ID, with an
	// empty data directory.
	ErrMemberRemoved = errors.New("member ID was removed from the cluster and cannot be reused")
	// ErrNotCaughtUp: a learner asked to be promoted lags the leader by
	// more than Config.LearnerPromoteLag entries.
	ErrNotCaughtUp = errors.New("learner has not caught up with the leader")
	// ErrNotLeader: the request must be made to the leader.
	ErrNotLeader = errors.New("not the leader")
	// ErrUnsupported: the operation is not available on this member,
	// such as a membership change on a member hosting several shards.
	ErrUnsupported = errors.New("not supported")
	// ErrInvalid wraps request validation failures.
	ErrInvalid = errors.New("invalid request")
)

// Result is the outcome of an applied write.
type Result struct {
	// Existed says whether the key had a value before the write, and
	// Prev is that value.
	Existed bool
	Prev    string
	// Succeeded is false only for a compare-and-set whose expectation did
	// not hold (nothing was written).
	Succeeded bool
}

// writes gives a member Put, Delete and CompareAndSet over its way of
// proposing a command and waiting for its outcome.
type writes struct {
	propose func(ctx context.Context, c command) (Result, error)
}

// Put sets key to value once the write is committed and applied.
func (w writes) Put(ctx context.Context, key, value string) (Result, error) {
	return w.propose(ctx, command{Op: opPut, Key: key, Value: value})
}

// Delete removes key.
func (w writes) Delete(ctx context.Context, key string) (Result, error) {
	return w.propose(ctx, command{Op: opDelete, Key: key})
}

// CompareAndSet sets key to value if its current value is *expect, or, with
// a nil expect, if it has no value (within the key's shard, on a sharded
// member). Result.Succeeded says which.
func (w writes) CompareAndSet(ctx context.Context, key string, expect *string, value string) (Result, error) {
	return w.propose(ctx, command{Op: opCAS, Key: key, Value: value, Expect: expect})
}

func (s *Server) proposeCommand(ctx context.Context, c command) (Result, error) {
	if c.Key == "" {
		return Result{}, fmt.Errorf("%w: missing key", ErrInvalid)
	}
	c.Node = s.cfg.ID
	c.Req = s.reqSeq.Add(1)
	data, err := json.Marshal(c)
	if err != nil {
		return Result{}, err
	}
	out, err := s.track(ctx, c.Req, func(ctx context.Context) error { return s.node.Propose(ctx, data) })
	return out.res, err
}

// track registers a waiter for request req, proposes, and waits until the
// loop applies the request, fails it, or the timeout passes. Every path
// returns an answer: the client is never left without one.
func (s *Server) track(ctx context.Context, req uint64, propose func(context.Context) error) (outcome, error) {
	if err := s.checkServing(); err != nil {
		return outcome{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
	defer cancel()
	ch := make(chan outcome, 1)
	s.mu.Lock()
	s.proposals[req] = ch
	s.mu.Unlock()
	forget := func() {
		s.mu.Lock()
		delete(s.proposals, req)
		s.mu.Unlock()
	}
	s.m.proposals.Inc()
	if err := propose(ctx); err != nil {
		forget()
		s.m.proposalsFailed.Inc()
		switch {
		case errors.Is(err, raft.ErrProposalDropped):
			return outcome{}, ErrNoLeader
		case errors.Is(err, raft.ErrStopped):
			return outcome{}, ErrStopped
		case ctx.Err() != nil:
			return outcome{}, ErrTimeout
		}
		return outcome{}, err
	}
	return awaitOutcome(ctx, ch, s.m, forget)
}

// awaitOutcome waits for a proposal's outcome on ch until ctx ends, then
// forgets the proposal and answers ErrTimeout (it may still apply).
func awaitOutcome(ctx context.Context, ch <-chan outcome, m *metrics, forget func()) (outcome, error) {
	select {
	case out := <-ch:
		if out.err != nil {
			m.proposalsFailed.Inc()
		} else {
			m.proposalsApplied.Inc()
		}
		return out, out.err
	case <-ctx.Done():
		forget()
		m.proposalsFailed.Inc()
		return outcome{}, ErrTimeout
	}
}

func (s *Server) checkServing() error {
	s.mu.RLock()
	removed, lead := s.removed, s.lead
	s.mu.RUnlock()
	select {
	case <-s.donec:
		if removed {
			return ErrRemoved
		}
		return ErrStopped
	default:
	}
	if removed {
		return ErrRemoved
	}
	if lead == 0 {
		return ErrNoLeader
	}
	return nil
}

// Get returns the value of key. A linearizable read (serializable false)
// asks the leader for its commit index (raft's ReadIndex), waits until this
// node applied that far, then reads locally: it sees every write
// acknowledged before it started. A serializable read reads this node's
// state at once and may be stale.
func (s *Server) Get(ctx context.Context, key string, serializable bool) (value string, ok bool, err error) {
	if key == "" {
		return "", false, fmt.Errorf("%w: missing key", ErrInvalid)
	}
	if !serializable {
		if err := s.linearize(ctx); err != nil {
			return "", false, err
		}
	} else if s.isRemoved() {
		return "", false, ErrRemoved
	}
	// dataMu keeps the read off a store being replaced by a snapshot or
	// being closed.
	s.dataMu.RLock()
	defer s.dataMu.RUnlock()
	if s.storeClosed {
		return "", false, ErrStopped
	}
	value, ok, err = s.shard.get(key)
	if err != nil {
		s.lg.Error("reading the state store", zap.String("key", key), zap.Error(err))
		return "", false, fmt.Errorf("kvservice: reading the state store: %w", err)
	}
	return value, ok, nil
}

// linearize returns once this node has applied everything committed before
// the call.
func (s *Server) linearize(ctx context.Context) error {
	if err := s.checkServing(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
	defer cancel()
	rctx, ch := newRead(s.cfg.ID, &s.reqSeq, s.m)
	s.mu.Lock()
	s.reads[string(rctx)] = ch
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.reads, string(rctx))
		s.mu.Unlock()
	}()
	fail := func() error {
		s.m.readsFailed.Inc()
		select {
		case <-s.donec:
			return ErrStopped
		default:
		}
		return ErrReadTimeout
	}
	ask := func() error { return s.node.ReadIndex(ctx, rctx) }
	index, err := awaitReadIndex(ctx, ask, ch, readRetryPeriod(&s.cfg), s.donec)
	if err != nil {
		return err
	}
	if index == 0 {
		return fail()
	}
	if err := s.waitApplied(ctx, index); err != nil {
		return fail()
	}
	return nil
}

// newRead counts a linearizable read of member id and returns its
// ReadIndex context, id then a number of seq (8 bytes each, big-endian),
// and the channel its read index is to come on.
//
// A leader takes a read whose context equals one it holds pending for the
// same read asked again (see awaitReadIndex) and answers only the first:
// another member's read with the same context would go unanswered until
// its retry. seq is seeded from the start time on every member, so two
// members' numbers can meet; with the member's ID in front, two members'
// contexts never do, and a member's own never repeat (its numbers only
// grow, across restarts too).
func newRead(id uint64, seq *atomic.Uint64, m *metrics) ([]byte, chan uint64) {
	m.readIndexes.Inc()
	rctx := make([]byte, 0, readCtxLen)
	rctx = binary.BigEndian.AppendUint64(rctx, id)
	return binary.BigEndian.AppendUint64(rctx, seq.Add(1)), make(chan uint64, 1)
}

// readCtxLen is the length of a read context made by newRead.
const readCtxLen = 16

func (s *Server) waitApplied(ctx context.Context, index uint64) error {
	s.mu.Lock()
	if s.applied >= index {
		s.mu.Unlock()
		return nil
	}
	w := appliedWaiter{index: index, ch: make(chan struct{})}
	s.appliedWs = append(s.appliedWs, w)
	s.mu.Unlock()
	select {
	case <-w.ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-s.donec:
		return ErrStopped
	}
}

// AddMember adds m as a learner, which the leader promotes to voter once it
// has caught up (see PromoteMember). The new member is then started with
// Join listing some existing members; it catches up from a snapshot. Until
// it is promoted, it does not count towards any quorum: adding a member
// that is not started yet costs no availability.
func (s *Server) AddMember(ctx context.Context, m Member) ([]Member, error) {
	switch {
	case m.ID == 0:
		return nil, fmt.Errorf("%w: member ID must not be zero", ErrInvalid)
	case m.PeerAddr == "" || m.HTTPAddr == "":
		return nil, fmt.Errorf("%w: peer_addr and http_addr are required", ErrInvalid)
	}
	s.mu.RLock()
	if s.state.Removed[m.ID] {
		s.mu.RUnlock()
		return nil, fmt.Errorf("%w: %d (start the new member under a new ID, on an empty data directory)", ErrMemberRemoved, m.ID)
	}
	for _, o := range s.state.Members {
		if o.ID == m.ID || o.PeerAddr == m.PeerAddr {
			s.mu.RUnlock()
			return nil, fmt.Errorf("%w: %d at %s", ErrMemberExists, o.ID, o.PeerAddr)
		}
	}
	s.mu.RUnlock()
	return s.changeMembers(ctx, raftpb.ConfChangeAddLearnerNode, m)
}

// RemoveMember removes member id. A removed member stops when it applies
// its removal.
func (s *Server) RemoveMember(ctx context.Context, id uint64) ([]Member, error) {
	s.mu.RLock()
	_, ok := s.state.Members[id]
	s.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("%w: %d", ErrUnknownMember, id)
	}
	return s.changeMembers(ctx, raftpb.ConfChangeRemoveNode, Member{ID: id})
}

func (s *Server) changeMembers(ctx context.Context, typ raftpb.ConfChangeType, m Member) ([]Member, error) {
	// Raft refuses a conf change while another is pending by turning it
	// into an empty entry, which nobody would answer; serialize ours.
	s.confMu.Lock()
	defer s.confMu.Unlock()
	req := s.reqSeq.Add(1)
	cctx, err := json.Marshal(confContext{Node: s.cfg.ID, Req: req, Member: m})
	if err != nil {
		return nil, err
	}
	cc := raftpb.ConfChange{Type: typ, NodeID: m.ID, Context: cctx}
	if _, err := s.track(ctx, req, func(ctx context.Context) error { return s.node.ProposeConfChange(ctx, cc) }); err != nil {
		return nil, err
	}
	return s.Members(), nil
}

// Members returns the current members, sorted by ID.
func (s *Server) Members() []Member {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.state.memberList()
}

// TransferLeader asks the leader to hand leadership to member to, and waits
// until this node sees to as leader. A learner cannot lead (ErrInvalid).
func (s *Server) TransferLeader(ctx context.Context, to uint64) error {
	s.mu.RLock()
	_, ok := s.state.Members[to]
	learner := slices.Contains(s.confState.Learners, to)
	lead := s.lead
	s.mu.RUnlock()
	if !ok {
		return fmt.Errorf("%w: %d", ErrUnknownMember, to)
	}
	if learner {
		// Raft ignores a transfer to a learner: say so rather than time out.
		return fmt.Errorf("%w: member %d is a learner: only a voter can lead", ErrInvalid, to)
	}
	if lead == 0 {
		return ErrNoLeader
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
	defer cancel()
	// On a follower, raft forwards the request to the leader as a
	// MsgTransferLeader naming the transferee as From; the transport
	// accepts that relay from a known member, so no detour through the
	// leader's HTTP API is needed. The leader gives up a transfer after an
	// election timeout (say, the transferee was still catching up), and a
	// forwarded request can be lost; ask again each time one would have
	// expired.
	retry := time.Duration(s.cfg.ElectionTicks) * s.cfg.TickInterval
	asked := time.Time{}
	tick := time.NewTicker(s.cfg.TickInterval)
	defer tick.Stop()
	for {
		s.mu.RLock()
		lead = s.lead
		s.mu.RUnlock()
		if lead == to {
			return nil
		}
		if lead != 0 && time.Since(asked) >= retry {
			s.node.TransferLeadership(ctx, lead, to)
			asked = time.Now()
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return fmt.Errorf("%w: leader is still %d", ErrTimeout, lead)
		}
	}
}

// Status is a member's view of the cluster, as GET /v1/status returns it.
type Status struct {
	ID            uint64   `json:"id"`
	ClusterID     string   `json:"cluster_id"`
	State         string   `json:"state"`
	Leader        uint64   `json:"leader"`
	Term          uint64   `json:"term"`
	Commit        uint64   `json:"commit"`
	Applied       uint64   `json:"applied"`
	SnapshotIndex uint64   `json:"snapshot_index"`
	Voters        []uint64 `json:"voters"`
	Learners      []uint64 `json:"learners,omitempty"`
	Members       []Member `json:"members"`
	Keys          int      `json:"keys"`
	// Shards is set by a member hosting shards (ShardedServer): each
	// shard's view. Leader and Term are then shard 0's, and Commit,
	// Applied and Keys sums over the shards.
	Shards []ShardStatus `json:"shards,omitempty"`
}

// Status returns the member's current view.
func (s *Server) Status() Status {
	st := s.node.Status()
	s.mu.RLock()
	defer s.mu.RUnlock()
	return Status{
		ID:            s.cfg.ID,
		ClusterID:     fmt.Sprintf("%x", s.cfg.ClusterID),
		State:         st.RaftState.String(),
		Leader:        st.Lead,
		Term:          st.Term,
		Commit:        st.Commit,
		Applied:       s.applied,
		SnapshotIndex: s.snapIndex,
		Voters:        s.confState.Voters,
		Learners:      s.confState.Learners,
		Members:       s.state.memberList(),
		Keys:          int(s.keys),
	}
}
