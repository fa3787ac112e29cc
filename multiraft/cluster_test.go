package multiraft

import (
	"fmt"
	"testing"
	"time"
)

// liveCluster is hosts with workers and tickers over a Transport per host.
type liveCluster struct {
	hosts []*Host
	apps  []*recApp
}

func startLive(t testing.TB, n int, transport func(id HostID) Transport, tweak func(*HostConfig)) *liveCluster {
	c := &liveCluster{}
	for i := 1; i <= n; i++ {
		var peers []HostID
		for j := 1; j <= n; j++ {
			if j != i {
				peers = append(peers, HostID(j))
			}
		}
		app := newRecApp()
		cfg := HostConfig{ID: HostID(i), Peers: peers, Storage: NewMemStorage(), Transport: transport(HostID(i)),
			App: app, Workers: 2, TickInterval: testTick, Seed: int64(i), CheckQuorum: true, PreVote: true}
		if tweak != nil {
			tweak(&cfg)
		}
		h, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		c.hosts = append(c.hosts, h)
		c.apps = append(c.apps, app)
	}
	t.Cleanup(func() {
		for _, h := range c.hosts {
			_ = h.Close()
		}
	})
	return c
}

func (c *liveCluster) createGroups(t testing.TB, groups int) {
	members := make([]HostID, len(c.hosts))
	for i := range c.hosts {
		members[i] = HostID(i + 1)
	}
	for g := GroupID(1); g <= GroupID(groups); g++ {
		for _, h := range c.hosts {
			if err := h.CreateGroup(GroupConfig{ID: g, Members: members}); err != nil {
				t.Fatal(err)
			}
		}
		// Spread the leaders over the hosts.
		_ = c.hosts[int(g)%len(c.hosts)].Campaign(g)
	}
}

// writeAll writes n entries to every group, proposing at each group's
// leader (again, every pass, while the group has none or lost some), and
// waits until every host applied them all.
func (c *liveCluster) writeAll(t testing.TB, groups, n int, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for {
		pending := 0
		for g := GroupID(1); g <= GroupID(groups); g++ {
			if c.appliedEverywhere(g, n) {
				continue
			}
			pending++
			if time.Now().After(deadline) {
				t.Fatalf("group %d: writes not applied everywhere by the deadline: %s", g, c.describe(g))
			}
			c.proposeAtLeader(g, n)
		}
		if pending == 0 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (c *liveCluster) appliedEverywhere(g GroupID, n int) bool {
	for _, a := range c.apps {
		if a.count(g) < n {
			return false
		}
	}
	return true
}

func (c *liveCluster) proposeAtLeader(g GroupID, n int) {
	for i, h := range c.hosts {
		st, err := h.Status(g)
		if err != nil || st.Lead != h.ID() {
			continue
		}
		for k := c.apps[i].count(g); k < n; k++ {
			_ = h.Propose(g, []byte(fmt.Sprintf("%d-%d", g, k)))
		}
	}
}

func (c *liveCluster) describe(g GroupID) string {
	s := ""
	for i, h := range c.hosts {
		st, _ := h.Status(g)
		s += fmt.Sprintf("[%d: %s term %d lead %d commit %d applied %d q=%v n=%d] ", h.ID(), st.RaftState,
			st.Term, st.Lead, st.Commit, st.Applied, st.Quiesced, c.apps[i].count(g))
	}
	return s
}

// A few hundred groups on three hosts in one process, with workers and
// tickers, commit writes in every group and then quiesce.
func TestManyGroupsInMemory(t *testing.T) {
	const groups = 300
	net := NewMemNetwork()
	c := startLive(t, 3, net.Endpoint, nil)
	for _, h := range c.hosts {
		net.Attach(h)
	}
	start := time.Now()
	c.createGroups(t, groups)
	t.Logf("groups created: %v", time.Since(start))
	start = time.Now()
	// The deadlines are failure guards, far above what a run takes: under
	// -race with GOMAXPROCS=1 on a loaded 2-core machine the 900
	// replicas' ticks outrun the CPU, elections churn (a group was seen at
	// its 13th term), and the writes took 46 s where they take 1 to 5 s
	// on an idle machine. (Another run lasted 60 s, 3.6 s of them writing:
	// the rest went to creating the groups, quiescing or closing, which
	// were not timed then.)
	c.writeAll(t, groups, 3, 120*time.Second)
	t.Logf("writes: %v", time.Since(start))
	start = time.Now()
	deadline := start.Add(120 * time.Second)
	for _, h := range c.hosts {
		for h.Stats().Awake > 0 {
			if time.Now().After(deadline) {
				t.Fatalf("host %d: %d groups still awake; %s", h.ID(), h.Stats().Awake, c.churn())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	t.Logf("quiesced: %v; %s", time.Since(start), c.churn())
}

// churn describes, host by host, the wakes, quiesces and peers declared
// down so far: what a slow quiescing comes from.
func (c *liveCluster) churn() string {
	s := ""
	for _, h := range c.hosts {
		st := h.Stats()
		s += fmt.Sprintf("[%d: wakes %d quiesces %d peers down %d] ", h.ID(), st.Wakes, st.Quiesces, st.PeersDown)
	}
	return s
}
