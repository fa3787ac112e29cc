package multiraft

import (
	"slices"
	"sync"
	"testing"
)

// dropApp is a recApp that also records the proposals reported dropped.
type dropApp struct {
	*recApp
	mu      sync.Mutex
	dropped map[GroupID][]string
}

func (a *dropApp) ProposalsDropped(g GroupID, data [][]byte) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, d := range data {
		a.dropped[g] = append(a.dropped[g], string(d))
	}
}

func (a *dropApp) droppedOf(g GroupID) []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.dropped[g])
}

// A proposal raft refuses on its host (no leader known yet) is reported to
// an application that observes drops; one that raft accepts is applied
// and not reported.
func TestDroppedProposalsAreReported(t *testing.T) {
	apps := map[HostID]*dropApp{}
	c := newManualCluster(t, 3, func(cfg *HostConfig) {
		a := &dropApp{recApp: cfg.App.(*recApp), dropped: map[GroupID][]string{}}
		apps[cfg.ID] = a
		cfg.App = a
	})
	c.createGroup(1)
	c.settle()
	c.propose(2, 1, "before any leader")
	c.settle()
	if got := apps[2].droppedOf(1); !slices.Equal(got, []string{"before any leader"}) {
		t.Fatalf("host 2 reported %q dropped, want the proposal made before any leader", got)
	}
	c.elect(1, 1)
	c.propose(2, 1, "forwarded")
	c.propose(1, 1, "on the leader")
	c.settle()
	c.tick(3)
	if n := c.apps[1].count(1); n != 2 {
		t.Fatalf("the leader applied %d entries, want the 2 accepted proposals", n)
	}
	for _, id := range c.ids {
		if got := apps[id].droppedOf(1); id != 2 && len(got) > 0 || id == 2 && len(got) != 1 {
			t.Errorf("host %d reported %q dropped after the election", id, got)
		}
	}
}
