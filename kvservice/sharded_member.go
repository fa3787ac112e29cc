package kvservice

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/raftkit/raft/multiraft"
	"github.com/raftkit/raft/raftpb"
)

// Membership with shards. Every member hosts a replica of every shard, so
// a membership change is one raft configuration change per shard: adding a
// member adds it as a learner to every shard, promoting it makes it a voter
// in every shard, removing it removes it from every shard. Each shard
// records its own members (with their addresses), removed IDs and raft
// configuration in its shardConfig, in the store's batch that applies the
// change (so with the shard's applied index) and in the shard's snapshots:
// a restart, or a member that joins, finds them there.
//
// A member's address book is what its replicas applied: the union of the
// shards' members. The transport and the host's liveness track every
// member of any shard; a member no shard has any more is forgotten after
// removedPeerGrace (so that it can still hear of its removal).

// shardConfContext is the context of a configuration change this service
// proposes to a shard. It extends confContext with Book, the proposer's
// address book: a member that joins and replays a shard's log from its
// start finds there the addresses of the members the log's first entries
// (the shard's bootstrap, which carries none) name.
type shardConfContext struct {
	Node   uint64   `json:"node"`
	Req    uint64   `json:"req"`
	Member Member   `json:"member"`
	Book   []Member `json:"book,omitempty"`
}

// memberBook is a ShardedServer's view of every shard's configuration, as
// its replicas applied them, and the peers it talks to.
type memberBook struct {
	mu     sync.Mutex
	shards []shardConfig     // by shard index; deep copies
	hints  map[uint64]Member // addresses given at start (InitialCluster, Join)
	peers  map[uint64]string // the transport's peers: address by ID
	forget map[uint64]bool   // peers to be forgotten once the grace ends
	wake   chan struct{}     // closed and replaced on every update
	gone   map[int]bool      // shards whose configuration removed this member
	// held are the shards moved to this member by hand (a leader
	// transfer), which the placement leaves here: by shard, the term of
	// the leadership the transfer won, or 0 while the transfer runs; see
	// isHeld.
	held map[int]uint64
	// promoting is set while this member promotes itself (see
	// maybePromoteSelf).
	promoting atomic.Bool
}

func newMemberBook(shards int, hints []Member) *memberBook {
	b := &memberBook{shards: make([]shardConfig, shards), hints: map[uint64]Member{},
		peers: map[uint64]string{}, forget: map[uint64]bool{}, wake: make(chan struct{}), gone: map[int]bool{},
		held: map[int]uint64{}}
	for _, m := range hints {
		b.hints[m.ID] = m
	}
	return b
}

// changed returns a channel closed at the next update.
func (b *memberBook) changed() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.wake
}

// inConf reports whether id is a voter or learner of cs.
func inConf(cs raftpb.ConfState, id uint64) bool {
	return slices.Contains(cs.Voters, id) || slices.Contains(cs.Learners, id)
}

// shardHas reports whether id is in shard i's configuration, and whether
// as a voter.
func (b *memberBook) shardHas(i int, id uint64) (member, voter bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	cs := b.shards[i].ConfState
	voter = slices.Contains(cs.Voters, id)
	return voter || slices.Contains(cs.Learners, id), voter
}

// voters returns shard i's voters, sorted.
func (b *memberBook) voters(i int) []uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	v := slices.Clone(b.shards[i].ConfState.Voters)
	slices.Sort(v)
	return v
}

// removed reports whether any shard removed id.
func (b *memberBook) removed(id uint64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, c := range b.shards {
		if c.Removed[id] {
			return true
		}
	}
	return false
}

// members returns every member of any shard, sorted by ID, with its
// address as a shard recorded it (or as given at start).
func (b *memberBook) members() []Member {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.membersLocked()
}

func (b *memberBook) membersLocked() []Member {
	seen := map[uint64]Member{}
	for _, c := range b.shards {
		for _, id := range append(slices.Clone(c.ConfState.Voters), c.ConfState.Learners...) {
			if m := seen[id]; m.PeerAddr != "" {
				continue
			}
			m, ok := c.Members[id]
			if !ok || m.PeerAddr == "" {
				m = b.hints[id]
			}
			m.ID = id
			seen[id] = m
		}
	}
	out := make([]Member, 0, len(seen))
	for _, m := range seen {
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, c Member) int { return cmp.Compare(a.ID, c.ID) })
	return out
}

// roles returns the IDs that are voters in every shard and those that
// are learners in some, sorted.
func (b *memberBook) roles() (voters, learners []uint64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, m := range b.membersLocked() {
		all := true
		for _, c := range b.shards {
			if !slices.Contains(c.ConfState.Voters, m.ID) {
				all = false
			}
			if slices.Contains(c.ConfState.Learners, m.ID) && !slices.Contains(learners, m.ID) {
				learners = append(learners, m.ID)
			}
		}
		if all {
			voters = append(voters, m.ID)
		}
	}
	return voters, learners
}

// set records shard i's configuration (a copy) and wakes the waiters.
func (b *memberBook) set(i int, cfg shardConfig) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.shards[i] = cfg
	close(b.wake)
	b.wake = make(chan struct{})
}

// noteConfChanges mirrors, in the shard's configuration, the configuration
// changes among ents that the shard has not applied yet (the host applied
// them to raft just before), so that the store's batch applying ents
// records the members and raft's configuration with the applied index.
// It runs on the worker holding the shard (the owner of r.cfg), before the
// entries go to the store, and reports whether anything changed.
//
// Changes a member proposed (not a shard's bootstrap) also ask for a
// snapshot: see snapshotConfig.
func (s *ShardedServer) noteConfChanges(r *shardRep, ents []raftpb.Entry) (changed, proposed bool) {
	applied, _ := r.progress()
	for i := range ents {
		e := &ents[i]
		if e.Index <= applied || (e.Type != raftpb.EntryConfChange && e.Type != raftpb.EntryConfChangeV2) {
			continue
		}
		cc, ok := decodeConfChange(e)
		if !ok {
			s.lg.Error("undecodable configuration change", zap.Int("shard", r.idx), zap.Uint64("index", e.Index))
			continue
		}
		if demotesVoter(r.cfg.ConfState, cc) {
			// Refused at apply (memberApp.RefuseConfChange): raft's
			// configuration stays, and so does its mirror.
			s.lg.Warn("ignored adding a voter as a learner (a retried addition committed after its promotion)",
				zap.Int("shard", r.idx), zap.Uint64("index", e.Index), zap.Uint64("id", cc.NodeID))
			continue
		}
		if r.cfg.Members == nil {
			r.cfg.Members = map[uint64]Member{}
		}
		if r.cfg.Removed == nil {
			r.cfg.Removed = map[uint64]bool{}
		}
		s.mirrorConfChange(r, cc)
		changed, proposed = true, proposed || len(cc.Context) > 0
	}
	if changed {
		// stageShard writes the configuration with the batch when the
		// store is not known to have the shard's meta: saying so makes
		// it write this one (finishShard sets inStore again).
		r.inStore = false
	}
	return changed, proposed
}

// decodeConfChange decodes a configuration change entry; a v2 change this
// service never proposes is mirrored only if it is a simple one.
func decodeConfChange(e *raftpb.Entry) (raftpb.ConfChange, bool) {
	if e.Type == raftpb.EntryConfChange {
		var cc raftpb.ConfChange
		return cc, cc.Unmarshal(e.Data) == nil
	}
	var cc2 raftpb.ConfChangeV2
	if cc2.Unmarshal(e.Data) != nil {
		return raftpb.ConfChange{}, false
	}
	// (AsV1 never converts, as etcd's: raft applies a single change with
	// the automatic transition as a simple one.)
	if len(cc2.Changes) != 1 || cc2.Transition != raftpb.ConfChangeTransitionAuto {
		return raftpb.ConfChange{}, false
	}
	ch := cc2.Changes[0]
	return raftpb.ConfChange{Type: ch.Type, NodeID: ch.NodeID, Context: cc2.Context}, true
}

// mirrorConfChange applies cc to r.cfg as raft applies a simple change:
// adding a voter promotes a learner, adding a learner demotes a voter,
// removing drops either and records the ID as removed.
func (s *ShardedServer) mirrorConfChange(r *shardRep, cc raftpb.ConfChange) {
	var ctx shardConfContext
	if len(cc.Context) > 0 {
		if err := json.Unmarshal(cc.Context, &ctx); err != nil {
			s.lg.Warn("undecodable configuration change context", zap.Int("shard", r.idx), zap.Error(err))
		}
	}
	cs := &r.cfg.ConfState
	id := cc.NodeID
	drop := func(ids []uint64) []uint64 { return slices.DeleteFunc(ids, func(x uint64) bool { return x == id }) }
	switch cc.Type {
	case raftpb.ConfChangeAddNode, raftpb.ConfChangeAddLearnerNode:
		cs.Voters, cs.Learners = drop(cs.Voters), drop(cs.Learners)
		if cc.Type == raftpb.ConfChangeAddNode {
			cs.Voters = append(cs.Voters, id)
			slices.Sort(cs.Voters)
		} else {
			cs.Learners = append(cs.Learners, id)
			slices.Sort(cs.Learners)
		}
		if m := ctx.Member; m.PeerAddr != "" {
			m.ID = id
			r.cfg.Members[id] = m
		} else if _, ok := r.cfg.Members[id]; !ok {
			r.cfg.Members[id] = Member{ID: id}
		}
	case raftpb.ConfChangeRemoveNode:
		cs.Voters, cs.Learners = drop(cs.Voters), drop(cs.Learners)
		delete(r.cfg.Members, id)
		r.cfg.Removed[id] = true
	case raftpb.ConfChangeUpdateNode:
		if m := ctx.Member; m.PeerAddr != "" && inConf(*cs, id) {
			m.ID = id
			r.cfg.Members[id] = m
		}
	}
	// Addresses the shard lacks (members of its bootstrap) from the
	// proposer's book.
	for _, m := range ctx.Book {
		if have := r.cfg.Members[m.ID]; inConf(*cs, m.ID) && have.PeerAddr == "" && m.PeerAddr != "" {
			r.cfg.Members[m.ID] = m
		}
	}
	s.lg.Info("shard configuration changed", zap.Int("shard", r.idx), zap.Stringer("change", cc.Type),
		zap.Uint64("id", id), zap.Uint64s("voters", cs.Voters), zap.Uint64s("learners", cs.Learners))
}

// publishShardConfig hands shard r's configuration (after a change or a
// snapshot) to the address book, then brings the peers up to date and
// notes this member's own removal. It runs on the worker holding r.
func (s *ShardedServer) publishShardConfig(r *shardRep) {
	s.publishShardConfigs([]*shardRep{r})
}

// publishShardConfigs is publishShardConfig for the shards of one round:
// the peers are brought up to date once, not once per shard (that walks
// every shard's configuration, which made creating N shards cost N²).
func (s *ShardedServer) publishShardConfigs(reps []*shardRep) {
	for _, r := range reps {
		s.book.set(r.idx, r.cfg.clone())
	}
	s.syncPeers()
	for _, r := range reps {
		if r.cfg.Removed[s.cfg.ID] {
			s.noteRemovedFrom(r.idx)
		}
	}
}

// memberApp is the application the host runs: shardApp, with the shards'
// configuration changes mirrored in their configurations first.
type memberApp struct{ shardApp }

var (
	_ multiraft.RoundApplication     = memberApp{}
	_ multiraft.ProposalDropObserver = memberApp{}
	_ multiraft.ConfChangeFilter     = memberApp{}
)

// RefuseConfChange implements multiraft.ConfChangeFilter: adding a voter of
// the shard as a learner is refused (see demotesVoter).
func (a memberApp) RefuseConfChange(_ multiraft.GroupID, cc raftpb.ConfChangeV2, cs raftpb.ConfState) bool {
	// (ConfChangeV2.AsV1 never converts, as etcd's: look at the change.)
	if len(cc.Changes) != 1 || cc.Transition != raftpb.ConfChangeTransitionAuto {
		return false
	}
	ch := cc.Changes[0]
	return demotesVoter(cs, raftpb.ConfChange{Type: ch.Type, NodeID: ch.NodeID})
}

// demotesVoter reports whether cc adds a voter of cs as a learner, which
// raft would apply as a demotion. This service never demotes: such a
// change is an addition retried (AddMember repeats its proposal every
// election timeout until it sees it applied) whose late copy committed
// after the member's promotion, and applying it would take a vote from
// the member behind the operator's back. The shard's apply refuses it, on
// every replica alike (the decision depends on the log only).
func demotesVoter(cs raftpb.ConfState, cc raftpb.ConfChange) bool {
	return cc.Type == raftpb.ConfChangeAddLearnerNode && slices.Contains(cs.Voters, cc.NodeID)
}

// Apply implements multiraft.Application.
func (a memberApp) Apply(g multiraft.GroupID, ents []raftpb.Entry) {
	r := a.s.rep(g)
	var changed, proposed bool
	if r != nil && !r.failed {
		changed, proposed = a.s.noteConfChanges(r, ents)
	}
	a.shardApp.Apply(g, ents)
	if changed {
		a.s.publishShardConfig(r)
	}
	if proposed {
		a.s.snapshotConfig(r)
	}
}

// ApplyRound implements multiraft.RoundApplication.
func (a memberApp) ApplyRound(batch []multiraft.GroupEntries) {
	var changed, proposed []*shardRep
	for _, ge := range batch {
		r := a.s.rep(ge.Group)
		if r == nil || r.failed {
			continue
		}
		if c, p := a.s.noteConfChanges(r, ge.Entries); c {
			changed = append(changed, r)
			if p {
				proposed = append(proposed, r)
			}
		}
	}
	a.shardApp.ApplyRound(batch)
	if len(changed) > 0 {
		a.s.publishShardConfigs(changed)
	}
	for _, r := range proposed {
		a.s.snapshotConfig(r)
	}
}

// snapshotConfig snapshots shard r right after a configuration change, as
// Server does: raft sends a member that lags past the log its shard's
// latest snapshot, and drops one whose configuration lacks it; a member
// just added must find itself in it. It runs on the worker holding r,
// after the change's entries were applied.
func (s *ShardedServer) snapshotConfig(r *shardRep) {
	if r.failed || s.cfg.hooks != nil && s.cfg.hooks.noConfigSnapshot {
		return
	}
	r.mu.Lock()
	applied, keys := r.applied, r.keys
	r.snapIndex = applied
	r.mu.Unlock()
	err := func() error {
		data, err := s.takeSnapshot(r, applied, keys)
		if err != nil {
			return err
		}
		// The log below applied goes away: the store must hold it first.
		if err := s.store.sync(); err != nil {
			return err
		}
		return s.host.Compact(r.group(), applied, data)
	}()
	if err != nil && !errors.Is(err, multiraft.ErrClosed) {
		r.failed = true
		s.fail(fmt.Errorf("kvservice: shard %d: snapshot after a configuration change: %w", r.idx, err))
		return
	}
	s.m.snapshotsTaken.Inc()
}

// Restore implements multiraft.Application: the snapshot brings the
// shard's configuration too.
func (a memberApp) Restore(g multiraft.GroupID, snap raftpb.Snapshot) error {
	if err := a.shardApp.Restore(g, snap); err != nil {
		return err
	}
	a.s.publishShardConfig(a.s.rep(g))
	return nil
}

// syncPeers makes the transport and the host's liveness track every member
// of any shard (at its latest address) but this one; a peer no shard has
// any more is forgotten after removedPeerGrace, so that it can still hear
// of its removal.
func (s *ShardedServer) syncPeers() {
	b := s.book
	b.mu.Lock()
	defer b.mu.Unlock()
	want := b.peersWantedLocked(s.cfg.ID)
	for id, addr := range want {
		delete(b.forget, id)
		if b.peers[id] == addr {
			continue
		}
		b.peers[id] = addr
		s.nt.AddPeer(id, addr)
		if s.host != nil {
			s.host.AddPeer(id)
		}
	}
	for id := range b.peers {
		if _, ok := want[id]; ok || b.forget[id] {
			continue
		}
		b.forget[id] = true
		time.AfterFunc(removedPeerGrace, func() { s.forgetPeer(id) })
	}
}

// peersWantedLocked returns the address of every member of any shard but
// self, and of every member given at start that no shard removed (a
// member joining knows no other way to reach the shards' leaders).
func (b *memberBook) peersWantedLocked(self uint64) map[uint64]string {
	want := map[uint64]string{}
	for _, m := range b.hints {
		want[m.ID] = m.PeerAddr
	}
	for _, c := range b.shards {
		for id := range c.Removed {
			delete(want, id)
		}
	}
	for _, m := range b.membersLocked() {
		if m.PeerAddr != "" {
			want[m.ID] = m.PeerAddr
		}
	}
	delete(want, self)
	return want
}

// forgetPeer stops talking to peer id, unless a shard took it back
// meanwhile.
func (s *ShardedServer) forgetPeer(id uint64) {
	b := s.book
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.forget[id] {
		return
	}
	select {
	case <-s.donec:
		return // the transport is closed
	default:
	}
	delete(b.forget, id)
	delete(b.peers, id)
	s.nt.RemovePeer(id)
	s.host.RemovePeer(id)
	s.lg.Info("forgot a removed member", zap.Uint64("id", id))
}

// noteRemovedFrom records that shard i removed this member. The member
// stops (Err: ErrRemoved) once every shard removed it, or removedStopGrace
// after the first did: a removed replica rarely hears of the removals
// committed after its own, and one shard's removal says the operator is
// removing the member from all (the others can finish without it).
func (s *ShardedServer) noteRemovedFrom(i int) {
	b := s.book
	b.mu.Lock()
	first := len(b.gone) == 0
	b.gone[i] = true
	all := len(b.gone) == len(b.shards)
	b.mu.Unlock()
	switch {
	case all:
		s.lg.Warn("this member was removed from every shard; stopping")
		s.fail(ErrRemoved)
	case first:
		s.lg.Warn("a shard removed this member; stopping once all did, or after a grace", zap.Int("shard", i),
			zap.Duration("grace", s.removedStopGrace()))
		time.AfterFunc(s.removedStopGrace(), func() {
			select {
			case <-s.donec:
			default:
				s.fail(ErrRemoved)
			}
		})
	}
}

// removedStopGrace is how long a member some shards removed keeps serving
// the others: three election timeouts, time for the member removing it to
// move their leaders off it and remove it.
func (s *ShardedServer) removedStopGrace() time.Duration {
	return 3 * time.Duration(s.cfg.ElectionTicks) * s.cfg.TickInterval
}

// conf returns a copy of shard i's voters and learners, sorted.
func (b *memberBook) conf(i int) raftpb.ConfState {
	b.mu.Lock()
	defer b.mu.Unlock()
	cs := b.shards[i].ConfState
	out := raftpb.ConfState{Voters: slices.Clone(cs.Voters), Learners: slices.Clone(cs.Learners)}
	slices.Sort(out.Voters)
	slices.Sort(out.Learners)
	return out
}
