package kvservice

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/raftkit/raft"
	"github.com/raftkit/raft/raftpb"
	"github.com/raftkit/raft/transport"
	"github.com/raftkit/raft/wal"
)

// Server is one member of a replicated key-value store: a raft.Node on WAL
// storage, talking to its peers through a transport, with an HTTP API.
//
// One goroutine (the loop) owns the Ready cycle: it persists, sends, applies
// committed entries to the state machine, snapshots, and answers the
// proposals and reads that HTTP handlers wait on.
type Server struct {
	cfg     Config
	lg      *zap.Logger
	storage *wal.Storage
	store   *stateStore // the state machine's keys and meta, on disk
	shard   shard       // this group's part of store
	node    raft.Node
	tr      *transport.Transport
	httpFront
	m *metrics
	writes

	reqSeq atomic.Uint64 // source of proposal and read IDs

	// dataMu is held for reading by readers of the store and for writing
	// while a snapshot replaces the shard and when the store closes.
	dataMu      sync.RWMutex
	storeClosed bool // guarded by dataMu
	walClosed   bool // guarded by dataMu

	mu sync.RWMutex
	// Guarded by mu; written only by the loop.
	// Invariant: snapIndex <= applied, and the store, state (members and
	// removed IDs) and keys are the state machine as of applied.
	state     *kvState
	keys      uint64
	applied   uint64
	snapIndex uint64
	confState raftpb.ConfState
	lead      uint64
	removed   bool
	// confChanged asks the next maybeSnapshot for a snapshot.
	confChanged bool
	// Waiters, guarded by mu: proposals by request ID, reads by context,
	// and waits for the applied index to reach some index.
	proposals map[uint64]chan outcome
	reads     map[string]chan uint64
	appliedWs []appliedWaiter

	confMu    sync.Mutex  // one membership change at a time from this node
	promoting atomic.Bool // a learner promotion is in flight

	lifecycle
}

type outcome struct {
	res Result
	cs  *raftpb.ConfState
	err error
}

type appliedWaiter struct {
	index uint64
	ch    chan struct{}
}

// metaFile records the identity of the node a data directory belongs to, so
// that a directory is never started as another member or cluster.
type metaFile struct {
	ID        uint64 `json:"id"`
	ClusterID uint64 `json:"cluster_id"`
	// StateStore is the layout of the state store (Dir/state). A directory
	// written before the store existed has none: its state is imported
	// from its WAL's snapshot and log on first start.
	StateStore string `json:"state_store,omitempty"`
	// Shards is the shard count of a member hosting shards
	// (ShardedServer); 0 for a member of one raft group (Server).
	Shards int `json:"shards,omitempty"`
}

// New opens (or creates) the node's data directory, starts raft, the
// transport and the HTTP API, and returns the running server. The caller
// must Stop it.
func New(cfg Config) (*Server, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, err
	}
	if cfg.Shards > 1 {
		return nil, fmt.Errorf("kvservice: config: Shards %d: New serves one raft group; use NewSharded", cfg.Shards)
	}
	legacy, err := checkMeta(cfg, 0)
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg:       cfg,
		lg:        cfg.Logger.With(zap.Uint64("member", cfg.ID)),
		m:         newMetrics(),
		proposals: map[uint64]chan outcome{},
		reads:     map[string]chan uint64{},
		lifecycle: newLifecycle(),
	}
	s.writes = writes{propose: s.proposeCommand}
	s.m.reg.MustRegister(stateCollector{s})
	s.reqSeq.Store(uint64(time.Now().UnixNano()) << 8)
	if err := s.openStorage(legacy); err != nil {
		return nil, err
	}
	if s.state.Removed[cfg.ID] {
		// The data says this member was removed: starting it would only
		// knock on peers that refuse it.
		s.closeStorage()
		return nil, fmt.Errorf("kvservice: %s: %w", cfg.Dir, ErrRemoved)
	}
	if legacy {
		if err := writeMeta(filepath.Join(cfg.Dir, "meta.json"),
			metaFile{ID: cfg.ID, ClusterID: cfg.ClusterID, StateStore: storeLayoutVersion}); err != nil {
			s.closeStorage()
			return nil, err
		}
	}
	if err := s.start(); err != nil {
		s.closeStorage()
		return nil, err
	}
	go s.loop()
	return s, nil
}

// checkMeta checks that Dir belongs to this member, creating the meta file
// in a new directory, and reports whether the directory predates the
// state store.
func checkMeta(cfg Config, shards int) (legacy bool, err error) {
	path := filepath.Join(cfg.Dir, "meta.json")
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, writeMeta(path, metaFile{ID: cfg.ID, ClusterID: cfg.ClusterID, StateStore: storeLayoutVersion, Shards: shards})
	}
	if err != nil {
		return false, err
	}
	var m metaFile
	if err := json.Unmarshal(b, &m); err != nil {
		return false, fmt.Errorf("kvservice: %s: %w", path, err)
	}
	if m.ID != cfg.ID || m.ClusterID != cfg.ClusterID {
		return false, fmt.Errorf("kvservice: %s belongs to member %d of cluster %x, not member %d of cluster %x",
			cfg.Dir, m.ID, m.ClusterID, cfg.ID, cfg.ClusterID)
	}
	if m.Shards != shards {
		return false, fmt.Errorf("%w: %s holds a member of %s, this one was started as a member of %s",
			ErrShardCount, cfg.Dir, describeShards(m.Shards), describeShards(shards))
	}
	switch m.StateStore {
	case storeLayoutVersion:
		return false, nil
	case "":
		return true, nil
	}
	return false, fmt.Errorf("%w: %s says %q, this version reads %q", errStoreLayout, path, m.StateStore, storeLayoutVersion)
}

// describeShards names a member's kind by its meta file's shard count.
func describeShards(n int) string {
	if n == 0 {
		return "one raft group (--shards 1)"
	}
	return fmt.Sprintf("%d shards (--shards %d)", n, n)
}

func writeMeta(path string, m metaFile) error {
	b, _ := json.Marshal(m)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// openStorage opens the WAL and the state store and brings the store to
// where the WAL says the state machine is (see recoverStore).
func (s *Server) openStorage(legacy bool) (err error) {
	st, err := wal.Open(filepath.Join(s.cfg.Dir, "wal"), nil)
	if err != nil {
		return err
	}
	s.storage = st
	// One close for every way out with an error, so that no path leaves
	// the directories locked for the next attempt.
	defer func() {
		if err != nil {
			s.closeStorage()
		}
	}()
	snap, fresh, err := s.bootstrapWAL()
	if err != nil {
		return err
	}
	// A store may be created where the WAL's snapshot holds the state
	// itself (a new cluster's first, a directory from before the store):
	// the state is rebuilt from it and the log. Once the snapshot is only
	// a descriptor, the store must be there.
	_, described := decodeDescriptor(snap.Data)
	s.store, err = openStateStore(filepath.Join(s.cfg.Dir, "state"), fresh || legacy || !described, s.lg)
	if err != nil {
		return err
	}
	s.shard = shard{st: s.store, group: defaultGroup}
	meta, err := s.recoverStore(snap)
	if err != nil {
		return err
	}
	s.state = meta.cfg.state()
	s.keys = meta.keys
	s.applied = meta.applied
	s.snapIndex = snap.Metadata.Index
	s.confState = meta.cfg.ConfState
	if meta.applied == 0 {
		return nil // joining: everything comes with the leader's snapshot
	}
	return s.alignSnapshot(meta)
}

// bootstrapWAL returns the WAL's snapshot, writing the first one for a new
// cluster: the initial members as voters, and their addresses as the state
// machine's members. Every initial member writes the same snapshot, so they
// all start from the same log position.
func (s *Server) bootstrapWAL() (snap raftpb.Snapshot, fresh bool, err error) {
	st := s.storage
	hs, _, err := st.InitialState()
	if err != nil {
		return snap, false, err
	}
	if snap, err = st.Snapshot(); err != nil {
		return snap, false, err
	}
	last, err := st.LastIndex()
	if err != nil {
		return snap, false, err
	}
	fresh = raft.IsEmptyHardState(hs) && raft.IsEmptySnap(snap) && last == 0
	switch {
	case fresh && len(s.cfg.InitialCluster) > 0:
		state := newKVState()
		var voters []uint64
		for _, m := range s.cfg.InitialCluster {
			state.Members[m.ID] = m
			voters = append(voters, m.ID)
		}
		if _, ok := state.Members[s.cfg.ID]; !ok {
			return snap, fresh, fmt.Errorf("kvservice: member %d is not in the initial cluster", s.cfg.ID)
		}
		data, err := state.marshal()
		if err != nil {
			return snap, fresh, err
		}
		snap = raftpb.Snapshot{Data: data, Metadata: raftpb.SnapshotMetadata{
			Index: 1, Term: 1, ConfState: raftpb.ConfState{Voters: voters},
		}}
		if err := st.ApplySnapshot(snap); err != nil {
			return snap, fresh, err
		}
		s.lg.Info("bootstrapped a new cluster", zap.Int("members", len(voters)))
	case fresh && len(s.cfg.Join) == 0:
		return snap, fresh, errors.New("kvservice: empty data directory: give the initial cluster or members to join")
	case fresh:
		s.lg.Info("joining an existing cluster; waiting for a snapshot from its leader")
	default:
		s.lg.Info("restarting from data", zap.Uint64("snapshot-index", snap.Metadata.Index),
			zap.Uint64("last-index", last), zap.Uint64("term", hs.Term), zap.Uint64("commit", hs.Commit))
	}
	return snap, fresh, nil
}

// recoverStore returns the shard's meta, first bringing the store up to the
// WAL's snapshot if it is behind it: a snapshot in the JSON form (a new
// cluster's first, or one written before the store) is imported, and one
// received from a leader whose install a crash cut short is installed again
// from its file. A store ahead of the snapshot is the normal case: raft
// restarts with Applied at the store's index and replays only the entries
// after it.
func (s *Server) recoverStore(snap raftpb.Snapshot) (shardMeta, error) {
	meta, err := s.shard.load()
	if err != nil && !errors.Is(err, errNoShard) {
		return meta, err
	}
	index := snap.Metadata.Index
	if err == nil && meta.applied >= index {
		last, lerr := s.storage.LastIndex()
		if lerr != nil {
			return meta, lerr
		}
		if meta.applied > last {
			return meta, fmt.Errorf("kvservice: the state store %s has applied index %d, beyond the end of the log at %d: "+
				"the store and the WAL are not from the same member", s.store.dir, meta.applied, last)
		}
		return meta, s.removeReceivedSnapshots()
	}
	if raft.IsEmptySnap(snap) {
		return shardMeta{}, nil
	}
	d, isDesc := decodeDescriptor(snap.Data)
	if isDesc && d.File == "" {
		return meta, fmt.Errorf("kvservice: the state store %s is at index %d, behind the WAL's snapshot at %d, "+
			"which was kept only in the store: the store was lost or replaced", s.store.dir, meta.applied, index)
	}
	s.lg.Info("bringing the state store up to the WAL's snapshot", zap.Uint64("store-index", meta.applied),
		zap.Uint64("snapshot-index", index), zap.Bool("received", isDesc))
	meta, err = s.installSnapshotData(snap)
	if err != nil {
		return meta, err
	}
	return meta, s.removeReceivedSnapshots()
}

// removeReceivedSnapshots deletes received snapshot files: none is needed
// once the store holds the WAL's snapshot.
func (s *Server) removeReceivedSnapshots() error {
	dir := filepath.Join(s.cfg.Dir, snapDirName)
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("kvservice: removing received snapshots: %w", err)
	}
	return nil
}

// alignSnapshot makes the WAL's snapshot the store's applied index, when the
// store is ahead of it, and holds the store's view for followers: a leader
// can only stream the state as of a snapshot's index, and after a restart
// the view it held is gone.
func (s *Server) alignSnapshot(meta shardMeta) error {
	if meta.applied > s.snapIndex {
		if err := s.store.sync(); err != nil {
			return err
		}
		data := snapDescriptor{Format: storeLayoutVersion, Group: s.shard.group}.marshal()
		cs := meta.cfg.ConfState
		if _, err := s.storage.CreateSnapshot(meta.applied, &cs, data); err != nil {
			return err
		}
		s.snapIndex = meta.applied
	}
	s.shard.pin(meta.applied, meta.keys, meta.cfg)
	return nil
}

// closeStorage closes the state store and the WAL, whichever are open.
func (s *Server) closeStorage() {
	s.dataMu.Lock()
	defer s.dataMu.Unlock()
	if s.store != nil && !s.storeClosed {
		if err := s.store.close(); err != nil {
			s.lg.Warn("closing the state store", zap.Error(err))
		}
		s.storeClosed = true
	}
	if s.storage != nil && !s.walClosed {
		if err := s.storage.Close(); err != nil {
			s.lg.Warn("closing the WAL", zap.Error(err))
		}
		s.walClosed = true
	}
}

func (s *Server) start() error {
	rlg := s.lg.Named("raft").WithOptions(zap.IncreaseLevel(zap.InfoLevel))
	s.node = raft.RestartNode(&raft.Config{
		ID:              s.cfg.ID,
		ElectionTick:    s.cfg.ElectionTicks,
		HeartbeatTick:   1,
		Storage:         s.storage,
		Applied:         s.applied,
		MaxSizePerMsg:   1 << 20,
		MaxInflightMsgs: 256,
		CheckQuorum:     true,
		PreVote:         true,
		Logger:          raft.NewZapLogger(rlg),
	})
	// The transport reports a leader whose stream breaks: a crashed
	// leader is replaced an election timeout after its last heartbeat.
	if err := raft.SetFastFailover(s.node, true); err != nil {
		return err
	}
	tr, err := transport.New(transport.Config{
		ClusterID:  s.cfg.ClusterID,
		ID:         s.cfg.ID,
		ListenAddr: s.cfg.PeerAddr,
		Raft:       memberFilter{NodeRaft: transport.NodeRaft{Node: s.node}, s: s},
		Snapshots:  snapStreams{s},
		// Snapshots go to disk, not memory: the transport's in-memory
		// bound does not apply.
		MaxSnapshotSize: 1 << 40,
		Logger:          s.lg.Named("transport"),
		ServerTLS:       s.cfg.PeerServerTLS,
		ClientTLS:       s.cfg.PeerClientTLS,
	})
	if err != nil {
		s.node.Stop()
		return err
	}
	s.tr = tr
	known := map[uint64]bool{s.cfg.ID: true}
	for _, m := range s.state.memberList() {
		known[m.ID] = true
		s.addPeer(m)
	}
	// Address hints from the command line cover members the state does not
	// know yet (a joining node has no state at all).
	// Removed members are never peers again, whatever the hints say.
	for _, m := range append(append([]Member(nil), s.cfg.InitialCluster...), s.cfg.Join...) {
		if !known[m.ID] && !s.state.Removed[m.ID] {
			known[m.ID] = true
			s.addPeer(m)
		}
	}
	if err := s.serveHTTP(&s.cfg, s.Handler(), s.lg); err != nil {
		tr.Close()
		s.node.Stop()
		return err
	}
	s.lg.Info("serving", zap.String("http", s.HTTPAddr()), zap.String("peer", tr.Addr().String()))
	return nil
}

// memberFilter drops messages from removed members before they reach raft.
// The transport keeps a removed member as a peer for removedPeerGrace (so
// that it hears of its removal), and a stale process under that ID could
// meanwhile disturb the cluster with its term; after the grace period the
// transport refuses its streams outright.
type memberFilter struct {
	transport.NodeRaft
	s *Server
}

// Process steps m into the node unless its sender was removed.
func (f memberFilter) Process(ctx context.Context, m raftpb.Message) error {
	f.s.mu.RLock()
	removed := f.s.state.Removed[m.From]
	f.s.mu.RUnlock()
	if removed {
		f.s.m.removedPeerDrops.Inc()
		return fmt.Errorf("kvservice: dropped %s from removed member %d", m.Type, m.From)
	}
	return f.NodeRaft.Process(ctx, m)
}

func (s *Server) addPeer(m Member) {
	if m.ID == s.cfg.ID {
		return
	}
	if err := s.tr.AddPeer(m.ID, m.PeerAddr); err != nil {
		s.lg.Warn("adding peer", zap.Uint64("peer", m.ID), zap.String("addr", m.PeerAddr), zap.Error(err))
	}
}

// PeerAddr returns the address the raft transport listens on.
func (s *Server) PeerAddr() string { return s.tr.Addr().String() }

// ID returns the member's raft ID.
func (s *Server) ID() uint64 { return s.cfg.ID }

// shutdown releases everything, in the order that lets each part finish:
// waiters are answered, the HTTP server stops taking requests, the
// transport stops calling into the node, the node stops, the WAL closes.
func (s *Server) shutdown() {
	s.mu.Lock()
	for id, ch := range s.proposals {
		ch <- outcome{err: ErrStopped}
		delete(s.proposals, id)
	}
	s.mu.Unlock()
	s.stopHTTP()
	_ = s.tr.Close()
	s.node.Stop()
	s.closeStorage()
	s.lg.Info("stopped")
	close(s.donec)
}
