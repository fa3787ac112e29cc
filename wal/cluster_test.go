package wal

import (
	"fmt"
	"math/rand"
	"path/filepath"
	"testing"

	"github.com/raftkit/raft"
	pb "github.com/raftkit/raft/raftpb"
	"github.com/stretchr/testify/require"
)

var clusterOptions = Options{SegmentSize: 64 << 10}

// walNode is one member of a small in-process cluster on WAL storage.
type walNode struct {
	id  uint64
	dir string
	s   *Storage
	rn  *raft.RawNode
}

func (n *walNode) start(t *testing.T) {
	s, err := Open(n.dir, &clusterOptions)
	require.NoError(t, err)
	n.s = s
	n.rn, err = raft.NewRawNode(&raft.Config{
		ID: n.id, ElectionTick: 10, HeartbeatTick: 1, Storage: s,
		MaxSizePerMsg: 1 << 20, MaxInflightMsgs: 64, Logger: quietLogger,
	})
	require.NoError(t, err)
}

// TestClusterCrashRestarts runs three nodes with the synchronous Ready loop
// (Save, then send, then apply, then Advance) and crash-restarts random
// nodes between steps, dropping their in-flight messages. An entry counts
// as acknowledged once some node applied it; at the end every node's log
// holds every acknowledged entry.
func TestClusterCrashRestarts(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	peers := []uint64{1, 2, 3}
	nodes := map[uint64]*walNode{}
	for _, id := range peers {
		n := &walNode{id: id, dir: filepath.Join(t.TempDir(), fmt.Sprint(id))}
		s, err := Open(n.dir, &clusterOptions)
		require.NoError(t, err)
		require.NoError(t, s.ApplySnapshot(pb.Snapshot{Metadata: pb.SnapshotMetadata{
			Index: 1, Term: 1, ConfState: pb.ConfState{Voters: peers},
		}}))
		require.NoError(t, s.Close())
		n.start(t)
		nodes[id] = n
	}
	defer func() {
		for _, n := range nodes {
			n.s.Close()
		}
	}()
	var inflight []pb.Message
	acked := map[string]bool{}
	proposed := 0
	step := func(n *walNode) {
		for n.rn.HasReady() {
			rd := n.rn.Ready()
			require.NoError(t, n.s.Save(rd.HardState, rd.Entries, rd.Snapshot))
			inflight = append(inflight, rd.Messages...)
			for _, e := range rd.CommittedEntries {
				if e.Type == pb.EntryNormal && len(e.Data) > 0 {
					acked[string(e.Data)] = true
				}
			}
			n.rn.Advance(rd)
		}
	}
	steps := 1500
	if raceEnabled {
		steps = 250
	}
	for i := 0; i < steps; i++ {
		switch r := rng.Intn(100); {
		case r < 4: // crash-restart a node
			n := nodes[peers[rng.Intn(3)]]
			require.NoError(t, n.s.Close())
			kept := inflight[:0]
			for _, m := range inflight {
				if m.To != n.id && m.From != n.id {
					kept = append(kept, m)
				}
			}
			inflight = kept
			n.start(t)
		case r < 40:
			for _, n := range nodes {
				n.rn.Tick()
			}
		case r < 60:
			for _, n := range nodes {
				if n.rn.BasicStatus().RaftState == raft.StateLeader {
					_ = n.rn.Propose([]byte(fmt.Sprintf("e%d", proposed)))
					proposed++
				}
			}
		}
		for _, n := range nodes {
			step(n)
		}
		msgs := inflight
		inflight = nil
		for _, m := range msgs {
			if rng.Intn(20) == 0 {
				continue // lost
			}
			_ = nodes[m.To].rn.Step(m)
		}
	}
	// Heal: no crashes or losses until every node has applied everything.
	for i := 0; i < 200; i++ {
		for _, n := range nodes {
			n.rn.Tick()
			step(n)
		}
		msgs := inflight
		inflight = nil
		for _, m := range msgs {
			_ = nodes[m.To].rn.Step(m)
		}
	}
	require.Greater(t, len(acked), 20, "the cluster made progress")
	for _, n := range nodes {
		require.NoError(t, n.s.Close())
		s, err := Open(n.dir, &clusterOptions)
		require.NoError(t, err)
		n.s = s
		first, _ := s.FirstIndex()
		last, _ := s.LastIndex()
		es, err := s.Entries(first, last+1, 1<<40)
		require.NoError(t, err)
		have := map[string]bool{}
		for _, e := range es {
			have[string(e.Data)] = true
		}
		for p := range acked {
			require.True(t, have[p], "node %d lost acknowledged entry %q", n.id, p)
		}
	}
	t.Logf("%d entries acknowledged of %d proposed", len(acked), proposed)
}
