package wal

import (
	"fmt"
	"math/rand"
	"path/filepath"
	"testing"

	"github.com/raftkit/raft"
	"github.com/raftkit/raft/internal/knobs"
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
	// jitter draws the node's election timeouts; it survives restarts so
	// that a restarted node does not replay the timeouts it already used.
	jitter *rand.Rand
}

func (n *walNode) start(t *testing.T) {
	s, err := Open(n.dir, &clusterOptions)
	require.NoError(t, err)
	n.s = s
	if n.jitter == nil {
		n.jitter = rand.New(rand.NewSource(int64(n.id)))
	}
	n.rn, err = raft.NewRawNode(&raft.Config{
		ID: n.id, ElectionTick: 10, HeartbeatTick: 1, Storage: s,
		MaxSizePerMsg: 1 << 20, MaxInflightMsgs: 64,
		Logger: quietLogger,
	})
	require.NoError(t, err)
	// Election timeouts from the node's seeded source, so that the cluster
	// test runs the same way every time.
	knobs.SetElectionJitter(n.rn, n.jitter.Intn)
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
		for _, n := range inOrder(nodes, peers) {
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
		steps = 500
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
			for _, n := range inOrder(nodes, peers) {
				n.rn.Tick()
			}
		case r < 60:
			for _, n := range inOrder(nodes, peers) {
				if n.rn.BasicStatus().RaftState == raft.StateLeader {
					_ = n.rn.Propose([]byte(fmt.Sprintf("e%d", proposed)))
					proposed++
				}
			}
		}
		for _, n := range inOrder(nodes, peers) {
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
		for _, n := range inOrder(nodes, peers) {
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
	for _, n := range inOrder(nodes, peers) {
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

// inOrder lists the nodes by ID: ranging over the map directly would step
// them in a different order on every run.
func inOrder(nodes map[uint64]*walNode, ids []uint64) []*walNode {
	out := make([]*walNode, 0, len(ids))
	for _, id := range ids {
		out = append(out, nodes[id])
	}
	return out
}
