package multiraft

import (
	"fmt"
	"sync"
	"testing"

	"github.com/raftkit/raft"
	"github.com/raftkit/raft/raftpb"
)

// recApp records what a host's groups apply.
type recApp struct {
	mu      sync.Mutex
	applied map[GroupID][]string // normal entries' data, in order
	reads   map[GroupID][]raft.ReadState
	// restored is the data of the last snapshot restored per group.
	restored map[GroupID]string
}

func newRecApp() *recApp {
	return &recApp{applied: map[GroupID][]string{}, reads: map[GroupID][]raft.ReadState{},
		restored: map[GroupID]string{}}
}

func (a *recApp) Apply(g GroupID, ents []raftpb.Entry) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, e := range ents {
		if e.Type == raftpb.EntryNormal && len(e.Data) > 0 {
			a.applied[g] = append(a.applied[g], string(e.Data))
		}
	}
}

func (a *recApp) ReadIndexDone(g GroupID, rs []raft.ReadState) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.reads[g] = append(a.reads[g], rs...)
}

func (a *recApp) Restore(g GroupID, snap raftpb.Snapshot) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.restored[g] = string(snap.Data)
	return nil
}

func (a *recApp) count(g GroupID) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.applied[g])
}

// manualCluster is hosts in manual mode (no workers, no ticker) over a
// MemNetwork, driven step by step by the test.
type manualCluster struct {
	t     testing.TB
	net   *MemNetwork
	ids   []HostID
	hosts map[HostID]*Host
	apps  map[HostID]*recApp
	store map[HostID]*MemStorage
	tweak func(*HostConfig)
}

func newManualCluster(t testing.TB, n int, tweak func(*HostConfig)) *manualCluster {
	c := &manualCluster{t: t, net: NewMemNetwork(), hosts: map[HostID]*Host{},
		apps: map[HostID]*recApp{}, store: map[HostID]*MemStorage{}, tweak: tweak}
	for i := 1; i <= n; i++ {
		c.ids = append(c.ids, HostID(i))
	}
	for _, id := range c.ids {
		c.store[id] = NewMemStorage()
		c.start(id)
	}
	t.Cleanup(func() {
		for _, h := range c.hosts {
			_ = h.Close()
		}
	})
	return c
}

// start (re)starts host id over its storage.
func (c *manualCluster) start(id HostID) *Host {
	var peers []HostID
	for _, p := range c.ids {
		if p != id {
			peers = append(peers, p)
		}
	}
	c.apps[id] = newRecApp()
	cfg := HostConfig{ID: id, Peers: peers, Storage: c.store[id], Transport: c.net.Endpoint(id),
		App: c.apps[id], Seed: int64(id), CheckQuorum: true, PreVote: true}
	if c.tweak != nil {
		c.tweak(&cfg)
	}
	h, err := New(cfg)
	if err != nil {
		c.t.Fatal(err)
	}
	c.hosts[id] = h
	c.net.Attach(h)
	return h
}

func (c *manualCluster) createGroup(g GroupID, members ...HostID) {
	if len(members) == 0 {
		members = c.ids
	}
	for _, id := range members {
		if err := c.hosts[id].CreateGroup(GroupConfig{ID: g, Members: members}); err != nil {
			c.t.Fatal(err)
		}
	}
}

// settle runs every host's pending work until no host has any (saves a
// host holds back, holdSaves, do not count).
func (c *manualCluster) settle() {
	for i := 0; ; i++ {
		if i > 10000 {
			c.t.Fatal("cluster does not settle")
		}
		busy := false
		for _, id := range c.ids {
			h := c.hosts[id]
			held := h.holdSaves != nil && h.holdSaves()
			if h.sched.pending() > 0 || (h.saver != nil && h.saver.pending() && !held) {
				busy = true
				if err := h.RunPending(); err != nil {
					c.t.Fatal(err)
				}
			}
		}
		if !busy {
			return
		}
	}
}

// tick ticks every host n times, settling after each tick.
func (c *manualCluster) tick(n int) {
	for i := 0; i < n; i++ {
		for _, id := range c.ids {
			c.hosts[id].Tick()
		}
		c.settle()
	}
}

// announceTicks is how many ticks after a member's last answer the
// leader's commit announcements reach it at the latest: with the first
// heartbeat a recent append does not spare (announce.go).
func (c *manualCluster) announceTicks() int {
	cfg := c.hosts[c.ids[0]].cfg
	return cfg.AppendSparesTicks + cfg.HeartbeatTick
}

func (c *manualCluster) status(id HostID, g GroupID) GroupStatus {
	st, err := c.hosts[id].Status(g)
	if err != nil {
		c.t.Fatal(err)
	}
	return st
}

// leader returns the host leading g in the highest term, or 0.
func (c *manualCluster) leader(g GroupID) HostID {
	var lead HostID
	var term uint64
	for _, id := range c.ids {
		st, err := c.hosts[id].Status(g)
		if err == nil && st.RaftState == raft.StateLeader && st.Term >= term {
			lead, term = id, st.Term
		}
	}
	return lead
}

// elect makes host id campaign for g and settles.
func (c *manualCluster) elect(g GroupID, id HostID) {
	if err := c.hosts[id].Campaign(g); err != nil {
		c.t.Fatal(err)
	}
	c.settle()
	if l := c.leader(g); l != id {
		c.t.Fatalf("group %d: leader %d after %d campaigned", g, l, id)
	}
}

func (c *manualCluster) propose(id HostID, g GroupID, data string) {
	if err := c.hosts[id].Propose(g, []byte(data)); err != nil {
		c.t.Fatal(err)
	}
}

func (c *manualCluster) allQuiesced(g GroupID) bool {
	for _, id := range c.ids {
		st, err := c.hosts[id].Status(g)
		if err == nil && !st.Quiesced {
			return false
		}
	}
	return true
}

func (c *manualCluster) describe(g GroupID) string {
	s := ""
	for _, id := range c.ids {
		st, err := c.hosts[id].Status(g)
		if err != nil {
			s += fmt.Sprintf("[%d: %v] ", id, err)
			continue
		}
		s += fmt.Sprintf("[%d: %s term %d lead %d commit %d applied %d q=%v] ", id, st.RaftState,
			st.Term, st.Lead, st.Commit, st.Applied, st.Quiesced)
	}
	return s
}

// release closes the hosts and drops every reference the cluster holds,
// so that a benchmark's next run measures the heap without this one
// (testing keeps cleanup closures, and with them the cluster, alive).
func (c *manualCluster) release() {
	for _, h := range c.hosts {
		_ = h.Close()
	}
	c.hosts, c.apps, c.store, c.net = map[HostID]*Host{}, nil, nil, nil
}

// announceAtOnce is the tweak of tests that look at the members' applies
// right after a settle, with no tick to release the leaders' held commit
// announcements (announce.go): leaders send them at once.
func announceAtOnce(cfg *HostConfig) { cfg.AnnounceCommitsAtOnce = true }
