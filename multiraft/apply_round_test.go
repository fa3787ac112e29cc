package multiraft

import (
	"sync"
	"testing"

	"github.com/raftkit/raft/raftpb"
)

// roundRecApp is a RoundApplication over a recApp: it records each
// ApplyRound's groups, and fails the test if the host calls Apply.
type roundRecApp struct {
	*recApp
	t      testing.TB
	mu     sync.Mutex
	rounds [][]GroupID
}

func (a *roundRecApp) Apply(GroupID, []raftpb.Entry) {
	a.t.Error("Apply called on a RoundApplication")
}

func (a *roundRecApp) ApplyRound(batch []GroupEntries) {
	var gs []GroupID
	for _, ge := range batch {
		gs = append(gs, ge.Group)
		a.recApp.Apply(ge.Group, ge.Entries)
	}
	a.mu.Lock()
	a.rounds = append(a.rounds, gs)
	a.mu.Unlock()
}

// A RoundApplication gets the committed entries of all the groups of a
// round in one ApplyRound call, each group at most once per call, and its
// reads as with Apply.
func TestRoundApplicationGetsRoundsOfGroups(t *testing.T) {
	apps := map[HostID]*roundRecApp{}
	c := newManualCluster(t, 3, func(cfg *HostConfig) {
		cfg.AnnounceCommitsAtOnce = true
		a := &roundRecApp{recApp: cfg.App.(*recApp), t: t}
		apps[cfg.ID] = a
		cfg.App = a
	})
	groups := []GroupID{1, 2, 3, 4}
	for _, g := range groups {
		c.createGroup(g)
		c.elect(g, 1)
	}
	for i := 0; i < 3; i++ {
		for _, g := range groups {
			c.propose(1, g, string(rune('a'+i))+string(rune('0'+g)))
		}
		c.settle()
	}
	if err := c.hosts[2].ReadIndex(3, []byte("r")); err != nil {
		t.Fatal(err)
	}
	c.settle()
	for _, id := range c.ids {
		a := apps[id]
		for _, g := range groups {
			if n := a.count(g); n != 3 {
				t.Fatalf("host %d group %d: %d entries applied, want 3", id, g, n)
			}
		}
		multi := false
		for _, gs := range a.rounds {
			seen := map[GroupID]bool{}
			for _, g := range gs {
				if seen[g] {
					t.Fatalf("host %d: group %d twice in one round: %v", id, g, gs)
				}
				seen[g] = true
			}
			multi = multi || len(gs) > 1
		}
		if !multi {
			t.Fatalf("host %d: no round applied more than one group: %v", id, a.rounds)
		}
	}
	a := apps[2]
	a.mu.Lock()
	reads := a.reads[3]
	a.mu.Unlock()
	if len(reads) != 1 || string(reads[0].RequestCtx) != "r" {
		t.Fatalf("host 2: reads %v, want the one read of group 3", reads)
	}
}
