package multiraft

import (
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/raftkit/raft/raftpb"
)

// demoteRefuser is a recApp that refuses to add a voter as a learner, and
// counts its refusals.
type demoteRefuser struct {
	*recApp
	refused atomic.Int32
}

func (a *demoteRefuser) RefuseConfChange(_ GroupID, cc raftpb.ConfChangeV2, cs raftpb.ConfState) bool {
	if len(cc.Changes) == 1 && cc.Changes[0].Type == raftpb.ConfChangeAddLearnerNode &&
		slices.Contains(cs.Voters, cc.Changes[0].NodeID) {
		a.refused.Add(1)
		return true
	}
	return false
}

// TestConfChangeFilterRefuses: a committed change the application refuses
// is not applied to raft on any host (host 2, whose demotion was refused,
// can still take the leadership, which a learner cannot), and the entries
// after it apply as usual.
func TestConfChangeFilterRefuses(t *testing.T) {
	net := NewMemNetwork()
	var apps []*demoteRefuser
	c := startLive(t, 3, net.Endpoint, func(cfg *HostConfig) {
		a := &demoteRefuser{recApp: cfg.App.(*recApp)}
		apps = append(apps, a)
		cfg.App = a
	})
	for _, h := range c.hosts {
		net.Attach(h)
	}
	c.createGroups(t, 1)
	c.writeAll(t, 1, 1, 20*time.Second)
	waitTrue(t, "a leader", func() bool { return c.leaderOf(t, 1) != 0 })
	lead := c.leaderOf(t, 1)
	if lead == 2 {
		if err := c.hosts[1].TransferLeader(1, 1); err != nil {
			t.Fatal(err)
		}
		waitTrue(t, "host 1 to lead", func() bool { return c.leaderOf(t, 1) == 1 })
		lead = 1
	}
	cc := raftpb.ConfChange{Type: raftpb.ConfChangeAddLearnerNode, NodeID: 2}
	if err := c.hosts[lead-1].ProposeConfChange(1, cc); err != nil {
		t.Fatal(err)
	}
	c.writeAll(t, 1, 2, 20*time.Second) // applied after the change
	for i, a := range apps {
		if n := a.refused.Load(); n != 1 {
			t.Errorf("host %d refused %d changes, want 1", i+1, n)
		}
	}
	if err := c.hosts[lead-1].TransferLeader(1, 2); err != nil {
		t.Fatal(err)
	}
	waitTrue(t, "host 2, still a voter, to lead", func() bool { return c.leaderOf(t, 1) == 2 })
}

// leaderOf returns group g's leader as host 1 sees it (0: none).
func (c *liveCluster) leaderOf(t *testing.T, g GroupID) HostID {
	lead, err := c.hosts[0].Leader(g)
	if err != nil {
		t.Fatal(err)
	}
	return lead
}

// waitTrue polls cond for up to 20 seconds.
func waitTrue(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}
