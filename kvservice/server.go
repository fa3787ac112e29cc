package kvservice

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
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
	node    raft.Node
	tr      *transport.Transport
	httpLn  net.Listener
	httpSrv *http.Server
	m       *metrics

	reqSeq atomic.Uint64 // source of proposal and read IDs

	mu sync.RWMutex
	// Guarded by mu; written only by the loop.
	// Invariant: snapIndex <= applied, and state is the state machine as of
	// applied.
	state     *kvState
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

	stopc    chan struct{}
	donec    chan struct{}
	stopOnce sync.Once
	errMu    sync.Mutex
	err      error // why the loop stopped, if not asked to
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
	if err := checkMeta(cfg); err != nil {
		return nil, err
	}
	s := &Server{
		cfg:       cfg,
		lg:        cfg.Logger.With(zap.Uint64("member", cfg.ID)),
		m:         newMetrics(),
		proposals: map[uint64]chan outcome{},
		reads:     map[string]chan uint64{},
		stopc:     make(chan struct{}),
		donec:     make(chan struct{}),
	}
	s.m.reg.MustRegister(stateCollector{s})
	s.reqSeq.Store(uint64(time.Now().UnixNano()) << 8)
	if err := s.openStorage(); err != nil {
		return nil, err
	}
	if s.state.Removed[cfg.ID] {
		// The data says this member was removed: starting it would only
		// knock on peers that refuse it.
		s.storage.Close()
		return nil, fmt.Errorf("kvservice: %s: %w", cfg.Dir, ErrRemoved)
	}
	if err := s.start(); err != nil {
		if cerr := s.storage.Close(); cerr != nil {
			s.lg.Warn("closing storage after a failed start", zap.Error(cerr))
		}
		return nil, err
	}
	go s.loop()
	return s, nil
}

func checkMeta(cfg Config) error {
	path := filepath.Join(cfg.Dir, "meta.json")
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		b, _ = json.Marshal(metaFile{ID: cfg.ID, ClusterID: cfg.ClusterID})
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, b, 0o644); err != nil {
			return err
		}
		return os.Rename(tmp, path)
	}
	if err != nil {
		return err
	}
	var m metaFile
	if err := json.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("kvservice: %s: %w", path, err)
	}
	if m.ID != cfg.ID || m.ClusterID != cfg.ClusterID {
		return fmt.Errorf("kvservice: %s belongs to member %d of cluster %x, not member %d of cluster %x",
			cfg.Dir, m.ID, m.ClusterID, cfg.ID, cfg.ClusterID)
	}
	return nil
}

// openStorage opens the WAL and, for a new cluster, writes the first
// snapshot: the initial members as voters, and their addresses as the state
// machine's members. Every initial member writes the same snapshot, so they
// all start from the same log position.
func (s *Server) openStorage() (err error) {
	st, err := wal.Open(filepath.Join(s.cfg.Dir, "wal"), nil)
	if err != nil {
		return err
	}
	// One close for every way out with an error, so that no path leaves
	// the directory locked for the next attempt.
	defer func() {
		if err != nil {
			st.Close()
			s.storage = nil
		}
	}()
	s.storage = st
	hs, _, err := st.InitialState()
	if err != nil {
		return err
	}
	snap, err := st.Snapshot()
	if err != nil {
		return err
	}
	last, err := st.LastIndex()
	if err != nil {
		return err
	}
	fresh := raft.IsEmptyHardState(hs) && raft.IsEmptySnap(snap) && last == 0
	switch {
	case fresh && len(s.cfg.InitialCluster) > 0:
		state := newKVState()
		var voters []uint64
		for _, m := range s.cfg.InitialCluster {
			state.Members[m.ID] = m
			voters = append(voters, m.ID)
		}
		if _, ok := state.Members[s.cfg.ID]; !ok {
			return fmt.Errorf("kvservice: member %d is not in the initial cluster", s.cfg.ID)
		}
		data, err := state.marshal()
		if err != nil {
			return err
		}
		snap = raftpb.Snapshot{Data: data, Metadata: raftpb.SnapshotMetadata{
			Index: 1, Term: 1, ConfState: raftpb.ConfState{Voters: voters},
		}}
		if err := st.ApplySnapshot(snap); err != nil {
			return err
		}
		s.lg.Info("bootstrapped a new cluster", zap.Int("members", len(voters)))
	case fresh && len(s.cfg.Join) == 0:
		return errors.New("kvservice: empty data directory: give the initial cluster or members to join")
	case fresh:
		s.lg.Info("joining an existing cluster; waiting for a snapshot from its leader")
	default:
		s.lg.Info("restarting from data", zap.Uint64("snapshot-index", snap.Metadata.Index),
			zap.Uint64("last-index", last), zap.Uint64("term", hs.Term), zap.Uint64("commit", hs.Commit))
	}
	state, err := unmarshalKVState(snap.Data)
	if err != nil {
		return err
	}
	s.state = state
	s.applied = snap.Metadata.Index
	s.snapIndex = snap.Metadata.Index
	s.confState = snap.Metadata.ConfState
	return nil
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
	tr, err := transport.New(transport.Config{
		ClusterID:  s.cfg.ClusterID,
		ID:         s.cfg.ID,
		ListenAddr: s.cfg.PeerAddr,
		Raft:       memberFilter{NodeRaft: transport.NodeRaft{Node: s.node}, s: s},
		Logger:     s.lg.Named("transport"),
		ServerTLS:  s.cfg.PeerServerTLS,
		ClientTLS:  s.cfg.PeerClientTLS,
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
	ln, err := net.Listen("tcp", s.cfg.HTTPAddr)
	if err != nil {
		tr.Close()
		s.node.Stop()
		return err
	}
	if s.cfg.HTTPTLS != nil {
		ln = tls.NewListener(ln, s.cfg.HTTPTLS)
	}
	s.httpLn = ln
	s.httpSrv = &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 5 * time.Second,
		ErrorLog: zap.NewStdLog(s.lg.Named("http"))}
	go func() {
		if err := s.httpSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.lg.Error("http server stopped", zap.Error(err))
		}
	}()
	s.lg.Info("serving", zap.String("http", ln.Addr().String()), zap.String("peer", tr.Addr().String()))
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

// HTTPAddr returns the address the client API listens on.
func (s *Server) HTTPAddr() string { return s.httpLn.Addr().String() }

// PeerAddr returns the address the raft transport listens on.
func (s *Server) PeerAddr() string { return s.tr.Addr().String() }

// ID returns the member's raft ID.
func (s *Server) ID() uint64 { return s.cfg.ID }

// Done is closed when the server has stopped: after Stop, after this member
// applied its own removal from the cluster, or after a storage failure (see
// Err).
func (s *Server) Done() <-chan struct{} { return s.donec }

// Err returns why the server stopped on its own: a storage failure, or
// ErrRemoved. It is nil while running and after Stop.
func (s *Server) Err() error {
	s.errMu.Lock()
	defer s.errMu.Unlock()
	return s.err
}

// Stop stops the server and waits until its data is closed. Requests in
// flight are answered with ErrStopped. Stopping twice is harmless.
func (s *Server) Stop() {
	s.stopOnce.Do(func() { close(s.stopc) })
	<-s.donec
}

func (s *Server) setErr(err error) {
	s.errMu.Lock()
	if s.err == nil {
		s.err = err
	}
	s.errMu.Unlock()
}

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
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	_ = s.httpSrv.Shutdown(ctx)
	cancel()
	_ = s.httpSrv.Close()
	_ = s.tr.Close()
	s.node.Stop()
	if err := s.storage.Close(); err != nil {
		s.lg.Warn("closing storage", zap.Error(err))
	}
	s.lg.Info("stopped")
	close(s.donec)
}
