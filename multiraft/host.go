package multiraft

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/raftkit/raft"
	"github.com/raftkit/raft/internal/knobs"
	"github.com/raftkit/raft/raftpb"
)

// Host runs many Raft groups in one process: a bounded pool of workers
// drives the groups that have work, their Readys are persisted in batches
// and their messages leave in one batch per peer host. See the package
// documentation.
type Host struct {
	cfg   HostConfig
	sched *scheduler
	lg    *zap.Logger

	mu      sync.Mutex
	groups  map[GroupID]*group
	order   []*group // creation order, for deterministic iteration
	awake   []*group // groups that tick; g.awakeIdx is the position
	live    liveness
	err     error // set when the host stopped (Close or storage failure)
	stopped bool

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	stats  hostStats
	jitter *seededJitter // every group's election jitter, from HostConfig.Seed
	// roundPool holds *round scratch, one per round in progress.
	roundPool sync.Pool
	// ticks counts Tick calls, for ackedRecently.
	ticks atomic.Int64
	// applier runs the application's applies behind the rounds (nil:
	// rounds apply themselves; see HostConfig.ApplyQueue); applierClose
	// ends it once.
	applier      *applier
	applierClose sync.Once
	// saver writes the groups' Readys behind the rounds (nil: rounds
	// save their own; see HostConfig.AsyncSaves); holdSaves, set by
	// tests in manual mode, keeps RunPending from flushing the saves
	// when it returns true, so that a crash can catch them unsaved.
	saver     *saver
	holdSaves func() bool
}

// New starts a host: its workers and, with TickInterval set, its ticker.
// Groups are added with CreateGroup.
func New(cfg HostConfig) (*Host, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	h := &Host{
		cfg:    cfg,
		sched:  newScheduler(cfg.MaxBatch),
		lg:     cfg.Logger.With(zap.Uint64("host", cfg.ID)),
		groups: make(map[GroupID]*group),
		jitter: newSeededJitter(cfg.Seed),
	}
	h.roundPool.New = func() any { return new(round) }
	if cfg.Workers > 0 {
		h.sched.minInterval = cfg.MinSaveInterval
	}
	if cfg.AsyncSaves {
		h.saver = newSaver(cfg.ID)
		if cfg.Workers > 0 {
			h.wg.Add(1)
			go h.saveLoop()
		}
	}
	h.live.init(cfg.Peers)
	h.ctx, h.cancel = context.WithCancel(context.Background())
	if cfg.Workers > 0 && cfg.ApplyQueue > 0 {
		h.applier = newApplier(cfg.ApplyQueue)
		go h.applier.run(cfg.App)
	}
	for i := 0; i < cfg.Workers; i++ {
		h.wg.Add(1)
		go h.worker()
	}
	if cfg.TickInterval > 0 {
		h.wg.Add(1)
		go h.ticker(cfg.TickInterval)
	}
	return h, nil
}

// ID returns the host's ID.
func (h *Host) ID() HostID { return h.cfg.ID }

func (h *Host) worker() {
	defer h.wg.Done()
	for {
		gs := h.sched.next()
		if gs == nil {
			return
		}
		h.runRound(gs)
	}
}

func (h *Host) ticker(d time.Duration) {
	defer h.wg.Done()
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-h.ctx.Done():
			return
		case <-t.C:
			h.Tick()
		}
	}
}

// Close stops the workers and the ticker and waits for them. Group state
// already saved stays in Storage; a new Host over the same Storage
// recovers the groups (call CreateGroup for each).
func (h *Host) Close() error {
	h.stop(ErrClosed)
	h.cancel()
	h.sched.close()
	if h.saver != nil {
		h.saver.close()
	}
	h.wg.Wait()
	if h.applier != nil { // the workers are gone: nothing submits any more
		h.applierClose.Do(h.applier.close)
	}
	return nil
}

// stop marks the host stopped with err, once.
func (h *Host) stop(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.stopped {
		h.stopped, h.err = true, err
	}
}

// Err returns why the host stopped (ErrClosed, or the storage error that
// stopped it), or nil while it runs.
func (h *Host) Err() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.err
}

// RunPending processes, on the caller's goroutine, every group that has
// work, until none has: the way to drive a host built with Workers 0
// (with AsyncSaves, it also saves what the rounds handed over, and
// delivers what waited for that). It returns the error that stopped the
// host, if any.
func (h *Host) RunPending() error {
	for {
		if err := h.Err(); err != nil {
			return err
		}
		gs := h.sched.tryNext()
		if gs == nil {
			if h.saver != nil && (h.holdSaves == nil || !h.holdSaves()) && h.flushSaves() {
				continue // the saves' answers scheduled their groups
			}
			return nil
		}
		h.runRound(gs)
	}
}

// CreateGroup starts a replica of a group on this host: a new group
// bootstraps with cfg.Members, a group with state in Storage restarts
// from it, and with cfg.Join an empty replica waits for its leader. A
// restarting group whose stored snapshot is past cfg.Applied hands it to
// Application.Restore first; the entries after it come through Apply.
func (h *Host) CreateGroup(cfg GroupConfig) error {
	if cfg.ID == 0 {
		return fmt.Errorf("%w: group ID must not be zero", ErrInvalidConfig)
	}
	h.mu.Lock()
	_, exists := h.groups[cfg.ID]
	stopped := h.stopped
	h.mu.Unlock()
	switch {
	case stopped:
		return ErrClosed
	case exists:
		return fmt.Errorf("%w: %d", ErrGroupExists, cfg.ID)
	}
	g, err := h.newGroup(cfg)
	if err != nil {
		return err
	}
	h.mu.Lock()
	if _, exists := h.groups[cfg.ID]; exists {
		h.mu.Unlock()
		return fmt.Errorf("%w: %d", ErrGroupExists, cfg.ID)
	}
	h.groups[cfg.ID] = g
	h.order = append(h.order, g)
	h.setAwakeLocked(g, true)
	h.mu.Unlock()
	h.sched.enqueue(g)
	return nil
}

func (h *Host) newGroup(cfg GroupConfig) (*group, error) {
	st, err := h.cfg.Storage.Open(cfg.ID)
	if err != nil {
		return nil, fmt.Errorf("multiraft: opening group %d: %w", cfg.ID, err)
	}
	hs, cs, err := st.InitialState()
	if err != nil {
		return nil, fmt.Errorf("multiraft: opening group %d: %w", cfg.ID, err)
	}
	last, err := st.LastIndex()
	if err != nil {
		return nil, fmt.Errorf("multiraft: opening group %d: %w", cfg.ID, err)
	}
	fresh := raft.IsEmptyHardState(hs) && last == 0 && len(cs.Voters) == 0
	rn, err := raft.NewRawNode(h.raftConfig(st, cfg.Applied))
	if err == nil {
		// A round copies every message into its batches before the
		// group's next Ready (see outbox.addMessages and finishRound), so
		// raft may reuse the arrays behind Ready.Messages.
		rn.LendMessages()
		rn.SetFastFailover(h.cfg.FastFailover)
	}
	if err != nil {
		return nil, fmt.Errorf("multiraft: group %d: %w", cfg.ID, err)
	}
	knobs.SetElectionJitter(rn, h.jitter.draw)
	if fresh && !cfg.Join {
		if !slices.Contains(cfg.Members, h.cfg.ID) {
			return nil, fmt.Errorf("%w: group %d: members %v lack this host %d",
				ErrInvalidConfig, cfg.ID, cfg.Members, h.cfg.ID)
		}
		peers := make([]raft.Peer, len(cfg.Members))
		for i, id := range cfg.Members {
			peers[i] = raft.Peer{ID: id}
		}
		if err := rn.Bootstrap(peers); err != nil {
			return nil, fmt.Errorf("multiraft: bootstrapping group %d: %w", cfg.ID, err)
		}
	}
	g := newGroup(cfg.ID, rn, st)
	g.self = h.cfg.ID
	g.savedTerm, g.savedVote = hs.Term, hs.Vote
	snap, err := st.Snapshot()
	if err != nil {
		return nil, fmt.Errorf("multiraft: opening group %d: %w", cfg.ID, err)
	}
	g.confIndex = snap.Metadata.Index
	// A restart after a compaction: the log no longer holds what the
	// snapshot covers, so the application starts from the snapshot.
	if snap.Metadata.Index > cfg.Applied {
		if err := h.cfg.App.Restore(cfg.ID, snap); err != nil {
			return nil, fmt.Errorf("multiraft: restoring group %d: %w", cfg.ID, err)
		}
	}
	return g, nil
}

// RemoveGroup stops this host's replica of group g and deletes its state
// from Storage. Removing the replica from the group's configuration is a
// separate step (ProposeConfChange on a member); removing a group from
// the cluster is RemoveGroup on every member.
func (h *Host) RemoveGroup(g GroupID) error {
	h.mu.Lock()
	grp, ok := h.groups[g]
	if ok {
		delete(h.groups, g)
		h.order = slices.DeleteFunc(h.order, func(x *group) bool { return x == grp })
		h.setAwakeLocked(grp, false)
	}
	h.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w: %d", ErrNoGroup, g)
	}
	grp.push(func(in *inbox) { in.removed = true })
	h.sched.enqueue(grp)
	return nil
}

// Groups returns the IDs of the groups this host runs, in creation order.
func (h *Host) Groups() []GroupID {
	h.mu.Lock()
	defer h.mu.Unlock()
	ids := make([]GroupID, len(h.order))
	for i, g := range h.order {
		ids[i] = g.id
	}
	return ids
}

func (h *Host) group(g GroupID) (*group, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stopped {
		return nil, h.err
	}
	grp, ok := h.groups[g]
	if !ok {
		return nil, fmt.Errorf("%w: %d", ErrNoGroup, g)
	}
	return grp, nil
}

// submit adds work to group g's inbox and schedules it.
func (h *Host) submit(g GroupID, f func(in *inbox)) error {
	grp, err := h.group(g)
	if err != nil {
		return err
	}
	grp.push(f)
	h.sched.enqueue(grp)
	return nil
}

// Propose hands data to group g for replication; it does not wait. The
// application learns the outcome from Apply (proposals are dropped when the
// group has no leader, as raft.RawNode.Propose does: retry later). It wakes
// a quiesced group.
func (h *Host) Propose(g GroupID, data []byte) error {
	return h.submit(g, func(in *inbox) { in.props = append(in.props, data) })
}

// Leader returns the leader of group g as this host's replica saw it at
// the end of its last round (0: none known). It is Status(g).Lead without
// copying the status: for callers that route every request by it.
func (h *Host) Leader(g GroupID) (HostID, error) {
	grp, err := h.group(g)
	if err != nil {
		return 0, err
	}
	return grp.leader.Load(), nil
}

// ProposeConfChange proposes a configuration change to group g (adding a
// host's replica: create it there with GroupConfig.Join).
func (h *Host) ProposeConfChange(g GroupID, cc raftpb.ConfChangeI) error {
	return h.submit(g, func(in *inbox) { in.confs = append(in.confs, cc) })
}

// ReadIndex asks group g for a read index; the answer comes to
// Application.ReadIndexDone with rctx. A quiesced leader is woken first,
// which ends any lease it held (see the package documentation).
func (h *Host) ReadIndex(g GroupID, rctx []byte) error {
	return h.submit(g, func(in *inbox) { in.reads = append(in.reads, rctx) })
}

// Campaign makes this host's replica of g campaign to lead it (to place
// leaders, for example spread over hosts).
func (h *Host) Campaign(g GroupID) error {
	return h.submit(g, func(in *inbox) { in.campaign = true })
}

// TransferLeader asks g's leader (if on this host) to hand leadership to
// the replica on host to.
func (h *Host) TransferLeader(g GroupID, to HostID) error {
	return h.submit(g, func(in *inbox) { in.transfer = to })
}

// GroupStatus is a group's state as of the end of its last processing
// round on this host.
type GroupStatus struct {
	raft.BasicStatus
	// Quiesced says the group stopped ticking on this host.
	Quiesced bool
	// Members are the hosts of the group's voters and learners.
	Members []HostID
}

// Status returns group g's status on this host.
func (h *Host) Status(g GroupID) (GroupStatus, error) {
	grp, err := h.group(g)
	if err != nil {
		return GroupStatus{}, err
	}
	grp.mu.Lock()
	defer grp.mu.Unlock()
	st := grp.status
	st.Members = slices.Clone(st.Members)
	return st, nil
}

// setAwakeLocked adds g to or removes it from the ticking set. h.mu held.
func (h *Host) setAwakeLocked(g *group, awake bool) {
	if awake == (g.awakeIdx >= 0) {
		return
	}
	if awake {
		g.awakeIdx = len(h.awake)
		h.awake = append(h.awake, g)
		return
	}
	last := h.awake[len(h.awake)-1]
	h.awake[g.awakeIdx] = last
	last.awakeIdx = g.awakeIdx
	h.awake = h.awake[:len(h.awake)-1]
	g.awakeIdx = -1
}
