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
	c := newCrashCluster(t, rand.New(rand.NewSource(3)), []uint64{1, 2, 3})
	defer func() {
		for _, n := range inOrder(c.nodes, c.peers) {
			n.s.Close()
		}
	}()
	steps := 1500
	if raceEnabled {
		steps = 500
	}
	for i := 0; i < steps; i++ {
		c.chaosRound()
	}
	// Heal: no crashes or losses until every node has applied everything.
	for i := 0; i < 200; i++ {
		c.healRound()
	}
	require.Greater(t, len(c.acked), 20, "the cluster made progress")
	c.checkAckedDurable()
	t.Logf("%d entries acknowledged of %d proposed", len(c.acked), c.proposed)
}

// crashCluster is a three-node WAL-backed cluster driven by hand, with
// messages in flight, crash-restarts and losses chosen by rng.
type crashCluster struct {
	t        *testing.T
	rng      *rand.Rand
	peers    []uint64
	nodes    map[uint64]*walNode
	inflight []pb.Message
	acked    map[string]bool // payloads seen committed by some node
	proposed int
}

// newCrashCluster bootstraps one WAL per peer with a snapshot naming all
// peers as voters and starts a node on each.
func newCrashCluster(t *testing.T, rng *rand.Rand, peers []uint64) *crashCluster {
	c := &crashCluster{t: t, rng: rng, peers: peers, nodes: map[uint64]*walNode{}, acked: map[string]bool{}}
	for _, id := range peers {
		n := &walNode{id: id, dir: filepath.Join(t.TempDir(), fmt.Sprint(id))}
		s, err := Open(n.dir, &clusterOptions)
		require.NoError(t, err)
		require.NoError(t, s.ApplySnapshot(pb.Snapshot{Metadata: pb.SnapshotMetadata{
			Index: 1, Term: 1, ConfState: pb.ConfState{Voters: peers},
		}}))
		require.NoError(t, s.Close())
		n.start(t)
		c.nodes[id] = n
	}
	return c
}

// step drains n's Ready: saves to its WAL before sending, records
// committed payloads as acknowledged.
func (c *crashCluster) step(n *walNode) {
	for n.rn.HasReady() {
		rd := n.rn.Ready()
		require.NoError(c.t, n.s.Save(rd.HardState, rd.Entries, rd.Snapshot))
		c.inflight = append(c.inflight, rd.Messages...)
		for _, e := range rd.CommittedEntries {
			if e.Type == pb.EntryNormal && len(e.Data) > 0 {
				c.acked[string(e.Data)] = true
			}
		}
		n.rn.Advance(rd)
	}
}

// chaosRound does one random action (crash-restart a node, tick all, or
// propose on the leader), steps every node and delivers in-flight messages,
// losing one in twenty.
func (c *crashCluster) chaosRound() {
	switch r := c.rng.Intn(100); {
	case r < 4: // crash-restart a node
		n := c.nodes[c.peers[c.rng.Intn(3)]]
		require.NoError(c.t, n.s.Close())
		kept := c.inflight[:0]
		for _, m := range c.inflight {
			if m.To != n.id && m.From != n.id {
				kept = append(kept, m)
			}
		}
		c.inflight = kept
		n.start(c.t)
	case r < 40:
		for _, n := range inOrder(c.nodes, c.peers) {
			n.rn.Tick()
		}
	case r < 60:
		for _, n := range inOrder(c.nodes, c.peers) {
			if n.rn.BasicStatus().RaftState == raft.StateLeader {
				_ = n.rn.Propose([]byte(fmt.Sprintf("e%d", c.proposed)))
				c.proposed++
			}
		}
	}
	for _, n := range inOrder(c.nodes, c.peers) {
		c.step(n)
	}
	msgs := c.inflight
	c.inflight = nil
	for _, m := range msgs {
		if c.rng.Intn(20) == 0 {
			continue // lost
		}
		_ = c.nodes[m.To].rn.Step(m)
	}
}

// healRound ticks and steps every node and delivers every message.
func (c *crashCluster) healRound() {
	for _, n := range inOrder(c.nodes, c.peers) {
		n.rn.Tick()
		c.step(n)
	}
	msgs := c.inflight
	c.inflight = nil
	for _, m := range msgs {
		_ = c.nodes[m.To].rn.Step(m)
	}
}

// checkAckedDurable reopens every node's WAL and checks that each
// acknowledged payload is in its log.
func (c *crashCluster) checkAckedDurable() {
	for _, n := range inOrder(c.nodes, c.peers) {
		require.NoError(c.t, n.s.Close())
		s, err := Open(n.dir, &clusterOptions)
		require.NoError(c.t, err)
		n.s = s
		first, _ := s.FirstIndex()
		last, _ := s.LastIndex()
		es, err := s.Entries(first, last+1, 1<<40)
		require.NoError(c.t, err)
		have := map[string]bool{}
		for _, e := range es {
			have[string(e.Data)] = true
		}
		for p := range c.acked {
			require.True(c.t, have[p], "node %d lost acknowledged entry %q", n.id, p)
		}
	}
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
