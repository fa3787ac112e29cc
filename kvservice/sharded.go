package kvservice

import (
	"cmp"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/raftkit/raft/multiraft"
	"github.com/raftkit/raft/multiraft/walstore"
	"github.com/raftkit/raft/raftpb"
	"github.com/raftkit/raft/transport"
	"github.com/raftkit/raft/wal/shared"
)

// ShardedServer is a member of a key-value store whose key space is split
// into Config.Shards raft groups (shards), all hosted by one
// multiraft.Host: the shards' logs share one write-ahead log (package
// wal/shared, under Dir/wal-shared), their messages one connection per peer
// member (multiraft.NetTransport over package transport's batch streams,
// with its handshake, frame limit and TLS), and their state machines one
// Pebble store (Dir/state, the same layout as Server's, one key range per
// shard). It serves the same HTTP API as Server.
//
// A key belongs to shard ShardOf(key, Shards). Every member hosts a replica
// of every shard, so any member serves any request: a write is proposed to
// the owning shard's local replica, which forwards it to that shard's
// leader; a linearizable read asks the shard's leader for a read index
// (raft's ReadIndex, through the host) and waits until the local replica
// applied that far. Compare-and-set is per key, so within one shard.
//
// Each shard's applied index is written in the same Pebble batch as the
// effects of the entries it covers, so a restart replays nothing already
// applied. Leaders are spread: shard i's leadership moves to the i-th
// member (mod the member count, in ID order) whenever that member is up.
//
// Membership changes go to every shard (see sharded_member.go and
// sharded_member_ops.go): a member is added as a learner of every shard,
// joins with an empty Dir and Config.Join, receives every shard, and is
// promoted to voter of every shard once it caught up with each. A leader
// transfer moves shards to a member that keeps them (see TransferShards).
// Shard snapshots
// of small shards travel inline; larger ones are streamed from a Pebble
// snapshot on a connection of their own: see sharded_snap.go.
type ShardedServer struct {
	cfg Config
	lg  *zap.Logger
	m   *metrics
	writes
	// initial is InitialCluster sorted by ID: the members a new shard
	// bootstraps with. book is what the shards applied since.
	initial []Member
	book    *memberBook
	confMu  sync.Mutex // one membership change at a time from this member

	w     *shared.WAL
	store *stateStore
	nt    *multiraft.NetTransport
	host  *multiraft.Host
	reps  []*shardRep // by shard index; group = index + 1

	httpFront

	reqSeq atomic.Uint64
	// ready is set once this member's shard count was checked against
	// the cluster's (see hello.go); requests are refused before.
	ready atomic.Bool

	mu        sync.Mutex
	proposals map[uint64]shardWaiter     // by request ID
	reads     map[string]shardReadWaiter // by read context
	dataMu    sync.RWMutex               // readers and snapshot installs vs close
	closed    bool                       // store closed; guarded by dataMu
	// installMu, by shard index: a shard's readers vs its snapshot
	// installs (which hold dataMu for reading), so that installing one
	// shard holds up no other shard's reads.
	installMu []sync.RWMutex

	lifecycle
}

// shardWaiter is a proposal waiting for its outcome; lead is the shard's
// leader, as the host saw it, when it was proposed.
type shardWaiter struct {
	shard int
	lead  uint64
	ch    chan outcome
}

// shardReadWaiter is a read waiting for its read index (0: failed).
type shardReadWaiter struct {
	shard int
	lead  uint64
	ch    chan uint64
}

// NewSharded opens (or creates) the member's data directory, starts the
// host with every shard, the peer transport and the HTTP API. cfg.Shards
// must be at least 1 and the same on every member (a mismatch stops the
// member with ErrShardCount, see hello.go); a directory keeps the count it
// was created with. A member of InitialCluster bootstraps the shards it
// has no state for; any other member joins them (cfg.Join names members to
// reach first: list them all). On a restart the members come from the
// store; InitialCluster and Join only supply addresses. The caller must
// Stop the server.
func NewSharded(cfg Config) (*ShardedServer, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	switch {
	case cfg.Shards < 1:
		return nil, fmt.Errorf("kvservice: config: Shards %d: want at least 1", cfg.Shards)
	case len(cfg.InitialCluster) == 0 && len(cfg.Join) == 0:
		return nil, errors.New("kvservice: config: a member with shards needs InitialCluster (every member, this one included) or Join")
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, err
	}
	if _, err := checkMeta(cfg, cfg.Shards); err != nil {
		return nil, err
	}
	s := &ShardedServer{cfg: cfg, lg: cfg.Logger.With(zap.Uint64("member", cfg.ID)), m: newMetrics(),
		initial: slices.Clone(cfg.InitialCluster), proposals: map[uint64]shardWaiter{},
		book:  newMemberBook(cfg.Shards, append(slices.Clone(cfg.InitialCluster), cfg.Join...)),
		reads: map[string]shardReadWaiter{}, lifecycle: newLifecycle(), installMu: make([]sync.RWMutex, cfg.Shards)}
	slices.SortFunc(s.initial, func(a, b Member) int { return cmp.Compare(a.ID, b.ID) })
	if len(s.initial) > 0 && !s.bootstraps() && len(cfg.Join) == 0 {
		return nil, fmt.Errorf("kvservice: member %d is not in the initial cluster (a member added at runtime needs Join)", cfg.ID)
	}
	s.writes = writes{propose: s.propose}
	s.m.reg.MustRegister(shardCollector{s})
	s.reqSeq.Store(uint64(time.Now().UnixNano()) << 8)
	if err := s.open(); err != nil {
		s.closeAll()
		return nil, err
	}
	if err := s.serveHTTP(); err != nil {
		s.closeAll()
		return nil, err
	}
	go s.run()
	return s, nil
}

// open opens the WAL and the store, starts the transport and the host, and
// creates every shard's group (restarting those with state).
func (s *ShardedServer) open() error {
	w, err := shared.Open(filepath.Join(s.cfg.Dir, "wal-shared"), nil)
	if err != nil {
		return err
	}
	s.w = w
	if s.store, err = openStateStore(filepath.Join(s.cfg.Dir, "state"), true, s.lg); err != nil {
		return err
	}
	// The shards' meta first: a removed member is refused before it
	// listens on its peer address (which it may no longer own).
	if err := s.loadShards(); err != nil {
		return err
	}
	s.nt, err = multiraft.NewNetTransport(multiraft.NetConfig{ListenAddr: s.cfg.PeerAddr, Snapshots: shardStreams{s},
		Logger: s.lg.Named("transport"), Stream: transport.BatchStreamConfig{ClusterID: s.cfg.ClusterID, ID: s.cfg.ID,
			ServerTLS: s.cfg.PeerServerTLS, ClientTLS: s.cfg.PeerClientTLS}})
	if err != nil {
		return err
	}
	s.syncPeers()
	var peers []multiraft.HostID
	s.book.mu.Lock()
	for id := range s.book.peers {
		peers = append(peers, id)
	}
	s.book.mu.Unlock()
	s.host, err = multiraft.New(s.hostConfig(peers, walstore.New(w)))
	if err != nil {
		return err
	}
	s.nt.Serve(s.host)
	return s.createShards()
}

// bootstraps reports whether this member is one of InitialCluster, whose
// members bootstrap the shards; any other member joins them.
func (s *ShardedServer) bootstraps() bool {
	return slices.ContainsFunc(s.initial, func(m Member) bool { return m.ID == s.cfg.ID })
}

// loadShards reads every shard's meta from the store into its replica and
// the address book. A member a shard removed does not start: IDs are
// never reused.
func (s *ShardedServer) loadShards() error {
	s.reps = make([]*shardRep, s.cfg.Shards)
	for i := range s.reps {
		r := newShardRep(s.store, i, s.shardConfig())
		if err := r.load(); err != nil {
			return err
		}
		if r.cfg.Removed[s.cfg.ID] {
			return fmt.Errorf("kvservice: %s: %w (shard %d)", s.cfg.Dir, ErrRemoved, i)
		}
		s.reps[i] = r
		s.book.set(i, r.cfg.clone())
	}
	return nil
}

// hostConfig is the configuration of the member's multiraft host.
func (s *ShardedServer) hostConfig(peers []multiraft.HostID, st multiraft.Storage) multiraft.HostConfig {
	return multiraft.HostConfig{ID: s.cfg.ID, Peers: peers, Storage: st,
		Transport: s.nt, App: memberApp{shardApp{s}}, Workers: 1, MaxBatch: roundGroups(s.cfg.Shards),
		MinSaveInterval: 3 * time.Millisecond, TickInterval: s.cfg.TickInterval,
		ElectionTick: s.cfg.ElectionTicks, HeartbeatTick: shardHeartbeatTicks(s.cfg.ElectionTicks),
		CheckQuorum: true, PreVote: true, FastFailover: true,
		MaxSizePerMsg: appendBudget(s.cfg.Shards),
		Logger:        s.lg.Named("host")}
}

// shardHeartbeatTicks is the shards' HeartbeatTick: every other tick. A
// busy shard's leader sends no heartbeat to a member it sent an append
// since the previous tick (multiraft), but with hundreds of shards most
// see a write less often than every tick, and their heartbeats and
// answers were most of a member's messages; every other tick halves
// them. An election timeout still spans at least five heartbeats, so
// CheckQuorum and elections see the same members (multiraft's simulation
// runs with heartbeats every other tick:
// TestSimMultiGroupHeartbeatEveryOtherTick); with an election timeout of
// under 10 ticks, heartbeats stay at every tick.
func shardHeartbeatTicks(electionTicks int) int {
	if electionTicks < 10 {
		return 1
	}
	return 2
}

// The host runs one worker, whose rounds take up to roundGroups shards
// and start their saves at least 3 ms apart: every shard with work then
// goes into one round, with one WAL write and fsync and one frame per
// peer member, where two workers split the shards into two smaller rounds
// paying those each, and a round's apply is one store batch (ApplyRound).
// Measured with raftkv load (256 clients, interleaved runs): against two
// workers, 64 shards rounds of up to 64 and 1 ms, CPU per write fell by
// 5-10% at 64 shards and ~20% at 1000 shards, fsyncs per write by a
// third to a half.
const maxRoundGroups = 1024

// roundGroups is the host's MaxBatch: every shard, between 64 and
// maxRoundGroups.
func roundGroups(shards int) int { return min(max(shards, 64), maxRoundGroups) }

// appendBudget is raft's MaxSizePerMsg for each shard: the messages of a
// round's shards to a peer travel together (transport's frame limit, 16
// MiB); NetTransport cuts a merge over the limit into several frames, but
// a round whose appends fit one frame costs one write: a quarter of a
// frame shared by the round's shards, between 4 KiB and raft's usual 1
// MiB. (An entry larger than the budget still goes, alone.)
func appendBudget(shards int) uint64 {
	b := uint64(transport.DefaultMaxMessageSize) / 4 / uint64(min(shards, maxRoundGroups))
	return min(max(b, 4<<10), 1<<20)
}

// createShards creates each shard's group: fresh groups bootstrap with
// the initial members, and the shard's preferred leader campaigns at once
// (a member added at runtime joins them instead, empty); others restart
// from the WAL, raft skipping what the store already applied.
func (s *ShardedServer) createShards() error {
	ids := make([]multiraft.HostID, len(s.initial))
	for i, m := range s.initial {
		ids[i] = m.ID
	}
	join := !s.bootstraps()
	joined := 0
	existing := s.w.GroupIDs()
	for i, r := range s.reps {
		g := r.group()
		fresh := !slices.Contains(existing, uint64(g))
		applied := uint64(0)
		if !fresh {
			var err error
			if applied, err = s.recoverShard(r); err != nil {
				return err
			}
			s.book.set(i, r.cfg.clone())
		}
		s.sweepSpool(uint64(g)) // before the group runs: no stream for it yet
		if i == 0 {
			// Before the group runs: its worker owns r.cfg from then on.
			if err := s.checkRecordedCount(); err != nil {
				return err
			}
		}
		gc := multiraft.GroupConfig{ID: g, Members: ids, Applied: applied, Join: fresh && join}
		if gc.Join {
			joined++
		}
		if err := s.host.CreateGroup(gc); err != nil {
			return fmt.Errorf("kvservice: starting shard %d: %w", i, err)
		}
		if fresh && !join && s.preferred(i) == s.cfg.ID {
			_ = s.host.Campaign(g)
		}
	}
	s.syncPeers()
	s.lg.Info("shards started", zap.Int("shards", len(s.reps)), zap.Int("members", len(s.book.members())),
		zap.Int("joining", joined))
	return nil
}

// recoverShard brings a restarting shard's store up to its WAL snapshot if
// it is behind (a snapshot received from a leader whose install a crash
// cut short), and returns the applied index to restart raft with: the
// store's, but never past the WAL's commit index (the store is not synced
// with the WAL; entries raft hands again are skipped by their index), and
// 0 while the WAL has no snapshot.
func (s *ShardedServer) recoverShard(r *shardRep) (uint64, error) {
	v, err := s.w.Group(uint64(r.group()))
	if err != nil {
		return 0, err
	}
	snap, err := v.Snapshot()
	if err != nil {
		return 0, err
	}
	hs, _, err := v.InitialState()
	if err != nil {
		return 0, err
	}
	if applied, _ := r.progress(); snap.Metadata.Index > applied {
		s.lg.Info("bringing a shard up to its WAL snapshot", zap.Int("shard", r.idx),
			zap.Uint64("store-index", applied), zap.Uint64("snapshot-index", snap.Metadata.Index))
		if err := s.restoreShard(r, snap); err != nil {
			return 0, err
		}
	}
	if snap.Metadata.Index == 0 || !sameConf(snap.Metadata.ConfState, r.cfg.ConfState) {
		// No snapshot yet: raft restarts with the configuration of
		// the WAL's snapshot, so with none it must apply the log's
		// first entries (the bootstrap's configuration changes) again;
		// raft hands over the whole log, and the store skips what it
		// has (at most SnapshotCount entries). Snapshotting every
		// shard right after its bootstrap instead costs a synced file
		// per shard and member when the cluster is created.
		//
		// Likewise when the store applied configuration changes past
		// the snapshot (its configuration is not the snapshot's): raft
		// restores the snapshot's, and must apply them again; it hands
		// over the log from the snapshot on.
		return snap.Metadata.Index, nil
	}
	applied, _ := r.progress()
	return max(snap.Metadata.Index, min(applied, hs.Commit)), nil
}

// checkRecordedCount compares the shard count shard 0 recorded (once a
// hello was applied here) with this member's: equal, the member serves,
// with nothing left to confirm; different, it must stop. Called at start
// (a restart finds the record in its store) and by shard 0's worker when
// it applies the record.
func (s *ShardedServer) checkRecordedCount() error {
	switch n := s.reps[0].cfg.Shards; {
	case n == s.cfg.Shards:
		if !s.ready.Swap(true) {
			s.lg.Info("the cluster's shard count is this member's; serving", zap.Int("shards", n))
		}
	case n != 0:
		return fmt.Errorf("%w: the cluster runs %d shards (recorded in %s), this member was started with %d",
			ErrShardCount, n, s.cfg.Dir, s.cfg.Shards)
	}
	return nil
}

// shardConfig is the configuration a new shard starts with: the initial
// members as voters (none on a member that joins: it learns the
// configuration from the shard's leader).
func (s *ShardedServer) shardConfig() shardConfig {
	cfg := shardConfig{Members: map[uint64]Member{}, Removed: map[uint64]bool{}}
	if !s.bootstraps() {
		return cfg
	}
	for _, m := range s.initial {
		cfg.Members[m.ID] = m
		cfg.ConfState.Voters = append(cfg.ConfState.Voters, m.ID)
	}
	return cfg
}

// sameConf reports whether a and b have the same voters and learners.
func sameConf(a, b raftpb.ConfState) bool {
	set := func(ids []uint64) []uint64 { ids = slices.Clone(ids); slices.Sort(ids); return ids }
	return slices.Equal(set(a.Voters), set(b.Voters)) && slices.Equal(set(a.Learners), set(b.Learners)) &&
		len(a.VotersOutgoing) == 0 && len(b.VotersOutgoing) == 0
}

// preferred returns the member that should lead shard i: its i-th voter
// (mod their count, in ID order); 0 while it knows of none.
func (s *ShardedServer) preferred(i int) uint64 {
	v := s.book.voters(i)
	if len(v) == 0 {
		return 0
	}
	return v[i%len(v)]
}

func (s *ShardedServer) serveHTTP() error {
	if err := s.httpFront.serveHTTP(&s.cfg, s.Handler(), s.lg); err != nil {
		return err
	}
	s.lg.Info("serving", zap.String("http", s.HTTPAddr()), zap.String("peer", s.nt.Addr().String()),
		zap.Int("shards", s.cfg.Shards))
	return nil
}

// Handler returns the HTTP API, the same as Server.Handler's.
func (s *ShardedServer) Handler() http.Handler { return newAPI(s, &s.cfg, s.m).handler() }

// PeerAddr returns the address the peer transport listens on.
func (s *ShardedServer) PeerAddr() string { return s.nt.Addr().String() }

// ID returns the member's ID.
func (s *ShardedServer) ID() uint64 { return s.cfg.ID }

// fail records err and stops the server (asynchronously: it may be called
// from the host's workers, which stopping waits for).
func (s *ShardedServer) fail(err error) {
	if s.setErr(err) {
		s.lg.Error("stopping", zap.Error(err))
	}
	s.askStop()
}

// run watches the shards every tick (leaders, placement, host failures)
// until the server stops, then shuts it down.
func (s *ShardedServer) run() {
	defer close(s.donec)
	defer s.shutdown()
	if !s.ready.Load() {
		go s.sayHello()
	}
	t := time.NewTicker(s.cfg.TickInterval)
	defer t.Stop()
	placed := 0 // the tick of the last placement pass
	for ticks := 1; ; ticks++ {
		select {
		case <-s.stopc:
			return
		case <-t.C:
		}
		if err := s.host.Err(); err != nil {
			s.fail(err)
			return
		}
		// Leaders move at most every two election timeouts.
		all := ticks%watchAllTicks == 0
		place := all && ticks-placed >= 2*s.cfg.ElectionTicks
		if place {
			placed = ticks
		}
		s.watchLeaders(all, place)
	}
}

// shutdown answers the waiters and releases everything, the host first so
// that nothing is applied to a closing store.
func (s *ShardedServer) shutdown() {
	s.mu.Lock()
	for id, w := range s.proposals {
		w.ch <- outcome{err: ErrStopped}
		delete(s.proposals, id)
	}
	s.mu.Unlock()
	s.stopHTTP()
	s.closeAll()
	s.lg.Info("stopped")
}

// closeAll closes whatever open managed to open, in dependency order.
func (s *ShardedServer) closeAll() {
	if s.host != nil {
		_ = s.host.Close()
	}
	if s.nt != nil {
		_ = s.nt.Close()
	}
	if s.w != nil {
		if err := s.w.Close(); err != nil {
			s.lg.Warn("closing the WAL", zap.Error(err))
		}
	}
	s.dataMu.Lock()
	defer s.dataMu.Unlock()
	if s.store != nil && !s.closed {
		if err := s.store.close(); err != nil {
			s.lg.Warn("closing the state store", zap.Error(err))
		}
		s.closed = true
	}
}
