// Command walnet runs a three-member raft cluster in one process the way a
// real deployment runs one member per machine: each member keeps its log in
// a wal.Storage directory and talks to the others over TCP through a
// transport.Transport (on loopback, ports picked by the system). It waits for
// a leader, proposes a few commands, prints what each member applied, and
// shuts everything down, removing its temporary directory.
//
//	go run ./examples/walnet
package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/raftkit/raft"
	"github.com/raftkit/raft/raftpb"
	"github.com/raftkit/raft/transport"
	"github.com/raftkit/raft/wal"
	"go.uber.org/zap"
)

const (
	clusterID = 0x7a1
	// tickInterval paces raft's logical clock: elections time out after
	// ElectionTick ticks (here 1 s), heartbeats go every HeartbeatTick.
	tickInterval = 100 * time.Millisecond
	// deadline bounds the whole run, so that a broken setup fails instead
	// of hanging.
	deadline = 2 * time.Minute
)

// member is one raft member: its node, storage, transport and the
// application state its Ready loop applies entries to.
type member struct {
	id      uint64
	node    raft.Node
	storage *wal.Storage
	tr      *transport.Transport

	mu      sync.Mutex
	applied []string        // distinct commands applied, in log order
	seen    map[string]bool // commands in applied
}

func main() {
	if err := run(); err != nil {
		log.Fatal(err)
	}
}

func run() error {
	dir, err := os.MkdirTemp("", "raftkit-walnet-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	zc := zap.NewDevelopmentConfig()
	zc.Level = zap.NewAtomicLevelAt(zap.WarnLevel) // raft is chatty at Info
	zc.DisableStacktrace = true
	lg := zap.Must(zc.Build())

	ids := []uint64{1, 2, 3}
	members, err := startMembers(dir, ids, lg)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	progress := make(chan struct{}, 1)
	var loops sync.WaitGroup
	loopCtx, stopLoops := context.WithCancel(ctx)
	for _, m := range members {
		loops.Add(1)
		go func() {
			defer loops.Done()
			if err := m.readyLoop(loopCtx, progress); err != nil {
				log.Printf("member %d: %v", m.id, err)
				cancel()
			}
		}()
	}
	err = propose(ctx, members, progress, []string{"x=1", "y=2", "x=3"})
	stopLoops()
	loops.Wait()
	// Stopping one member breaks the others' streams to it, which the
	// transports report as warnings; here that is expected.
	zc.Level.SetLevel(zap.ErrorLevel)
	if cerr := stopMembers(members); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	for _, m := range members {
		fmt.Printf("member %d applied: %s\n", m.id, strings.Join(m.appliedNow(), " "))
	}
	fmt.Println("stopped cleanly")
	return nil
}

// startMembers opens each member's storage, starts its node and transport,
// and tells every transport where the others listen.
func startMembers(dir string, ids []uint64, lg *zap.Logger) ([]*member, error) {
	peers := make([]raft.Peer, len(ids))
	for i, id := range ids {
		peers[i] = raft.Peer{ID: id}
	}
	var members []*member
	for _, id := range ids {
		m, err := startMember(filepath.Join(dir, fmt.Sprint(id)), id, peers, lg)
		if err != nil {
			stopMembers(members)
			return nil, err
		}
		members = append(members, m)
	}
	for _, a := range members {
		for _, b := range members {
			if a == b {
				continue
			}
			if err := a.tr.AddPeer(b.id, b.tr.Addr().String()); err != nil {
				stopMembers(members)
				return nil, err
			}
		}
	}
	return members, nil
}

func startMember(dir string, id uint64, peers []raft.Peer, lg *zap.Logger) (*member, error) {
	storage, err := wal.Open(dir, nil)
	if err != nil {
		return nil, err
	}
	// StartNode bootstraps a new cluster; a member restarting on a
	// non-empty directory would call raft.RestartNode instead.
	node := raft.StartNode(&raft.Config{
		ID:              id,
		ElectionTick:    10,
		HeartbeatTick:   1,
		Storage:         storage,
		MaxSizePerMsg:   1 << 20,
		MaxInflightMsgs: 256,
		Logger:          raft.NewZapLogger(lg),
	}, peers)
	tr, err := transport.New(transport.Config{
		ClusterID:  clusterID,
		ID:         id,
		ListenAddr: "127.0.0.1:0",
		Raft:       transport.NodeRaft{Node: node},
		Logger:     lg,
	})
	if err != nil {
		node.Stop()
		storage.Close()
		return nil, err
	}
	return &member{id: id, node: node, storage: storage, tr: tr, seen: map[string]bool{}}, nil
}

// stopMembers closes the transports first (no more incoming messages), then
// stops the nodes and closes the storages. The Ready loops must have
// returned.
func stopMembers(members []*member) error {
	var errs []error
	for _, m := range members {
		errs = append(errs, m.tr.Close())
	}
	for _, m := range members {
		m.node.Stop()
		errs = append(errs, m.storage.Close())
	}
	return errors.Join(errs...)
}

// readyLoop ticks the node and handles its Ready batches until ctx ends. It
// signals progress (without blocking) whenever it applied a command.
func (m *member) readyLoop(ctx context.Context, progress chan<- struct{}) error {
	ticker := time.NewTicker(tickInterval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
			m.node.Tick()
		case rd := <-m.node.Ready():
			// 1. Persist; Save fsyncs when raft.MustSync(rd) says so.
			if err := m.storage.Save(rd.HardState, rd.Entries, rd.Snapshot); err != nil {
				return fmt.Errorf("save: %w", err)
			}
			// 2. Send, only after the write. Send never blocks.
			m.tr.Send(rd.Messages)
			// 3. Apply (a snapshot would be loaded first; this
			// program's log never gets compacted, so none comes).
			if err := m.applyEntries(rd.CommittedEntries); err != nil {
				return err
			}
			select {
			case progress <- struct{}{}:
			default:
			}
			// 4. Advance.
			m.node.Advance()
		}
	}
}

func (m *member) applyEntries(ents []raftpb.Entry) error {
	for _, e := range ents {
		switch e.Type {
		case raftpb.EntryNormal:
			if len(e.Data) > 0 {
				m.applyCommand(string(e.Data))
			}
		case raftpb.EntryConfChange:
			var cc raftpb.ConfChange
			if err := cc.Unmarshal(e.Data); err != nil {
				return fmt.Errorf("entry %d: %w", e.Index, err)
			}
			m.node.ApplyConfChange(cc)
		case raftpb.EntryConfChangeV2:
			var cc raftpb.ConfChangeV2
			if err := cc.Unmarshal(e.Data); err != nil {
				return fmt.Errorf("entry %d: %w", e.Index, err)
			}
			m.node.ApplyConfChange(cc)
		}
	}
	return nil
}

// applyCommand records cmd once. A proposal retried after a leader change
// can be committed twice; applying a command again must not change the
// state, so the application recognises repeats.
func (m *member) applyCommand(cmd string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.seen[cmd] {
		m.seen[cmd] = true
		m.applied = append(m.applied, cmd)
	}
}

func (m *member) appliedNow() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.applied...)
}

func (m *member) hasApplied(cmd string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.seen[cmd]
}

// propose proposes each command in turn through member 1 and waits until
// every member applied it before the next, so that all apply them in this
// order. Raft may drop a proposal (no leader yet, or the leader changed);
// a proposal not applied within a few election timeouts is proposed again.
func propose(ctx context.Context, members []*member, progress <-chan struct{}, cmds []string) error {
	retry := time.NewTicker(30 * tickInterval)
	defer retry.Stop()
	for _, cmd := range cmds {
		for !appliedByAll(members, cmd) {
			if err := members[0].node.Propose(ctx, []byte(cmd)); err != nil && !errors.Is(err, raft.ErrProposalDropped) {
				return fmt.Errorf("propose %q: %w", cmd, err)
			}
			if err := waitApplied(ctx, members, progress, retry.C, cmd); err != nil {
				return err
			}
		}
	}
	return nil
}

// waitApplied returns when every member applied cmd or the retry ticker
// fires, and fails when ctx ends.
func waitApplied(ctx context.Context, members []*member, progress <-chan struct{}, retry <-chan time.Time, cmd string) error {
	for !appliedByAll(members, cmd) {
		select {
		case <-ctx.Done():
			return fmt.Errorf("%q not applied by every member: %w", cmd, ctx.Err())
		case <-retry:
			return nil
		case <-progress:
		}
	}
	return nil
}

func appliedByAll(members []*member, cmd string) bool {
	for _, m := range members {
		if !m.hasApplied(cmd) {
			return false
		}
	}
	return true
}
