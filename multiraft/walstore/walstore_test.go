package walstore

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/raftkit/raft"
	"github.com/raftkit/raft/multiraft"
	"github.com/raftkit/raft/raftpb"
	"github.com/raftkit/raft/wal/shared"
)

// app records the normal entries each group applies.
type app struct {
	mu      sync.Mutex
	applied map[multiraft.GroupID][]string
}

func newApp() *app { return &app{applied: map[multiraft.GroupID][]string{}} }

func (a *app) Apply(g multiraft.GroupID, ents []raftpb.Entry) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, e := range ents {
		if e.Type == raftpb.EntryNormal && len(e.Data) > 0 {
			a.applied[g] = append(a.applied[g], string(e.Data))
		}
	}
}

func (a *app) ReadIndexDone(multiraft.GroupID, []raft.ReadState) {}

// Restore takes the snapshot's data as the entries applied so far, one per
// line (see compactAll).
func (a *app) Restore(g multiraft.GroupID, snap raftpb.Snapshot) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.applied[g] = nil
	if len(snap.Data) > 0 {
		a.applied[g] = strings.Split(string(snap.Data), "\n")
	}
	return nil
}

func (a *app) entries(g multiraft.GroupID) []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.applied[g]...)
}

// cluster is three hosts in manual mode (no workers, no ticker: the test
// drives them, deterministically) over a MemNetwork, each persisting all
// its groups in its own shared WAL.
type cluster struct {
	t        *testing.T
	net      *multiraft.MemNetwork
	dirs     []string
	wals     []*shared.WAL
	hosts    []*multiraft.Host
	apps     []*app
	maxBatch int
}

const nHosts = 3

func newCluster(t *testing.T, maxBatch int) *cluster {
	c := &cluster{t: t, maxBatch: maxBatch}
	for i := 0; i < nHosts; i++ {
		c.dirs = append(c.dirs, t.TempDir())
	}
	c.start()
	t.Cleanup(c.stop)
	return c
}

// start opens every host's WAL and starts its host, with every group the
// WAL holds (none the first time).
func (c *cluster) start() {
	c.net = multiraft.NewMemNetwork()
	c.wals, c.hosts, c.apps = make([]*shared.WAL, nHosts), make([]*multiraft.Host, nHosts), make([]*app, nHosts)
	for i := range c.hosts {
		w, err := shared.Open(c.dirs[i], &shared.Options{SegmentSize: 1 << 20, NoPreallocate: true})
		if err != nil {
			c.t.Fatal(err)
		}
		id := multiraft.HostID(i + 1)
		var peers []multiraft.HostID
		for j := 1; j <= nHosts; j++ {
			if multiraft.HostID(j) != id {
				peers = append(peers, multiraft.HostID(j))
			}
		}
		c.apps[i] = newApp()
		h, err := multiraft.New(multiraft.HostConfig{ID: id, Peers: peers, Storage: New(w),
			Transport: c.net.Endpoint(id), App: c.apps[i], MaxBatch: c.maxBatch,
			Seed: int64(id), CheckQuorum: true, PreVote: true})
		if err != nil {
			c.t.Fatal(err)
		}
		c.net.Attach(h)
		c.wals[i], c.hosts[i] = w, h
		for _, g := range w.GroupIDs() {
			if err := h.CreateGroup(multiraft.GroupConfig{ID: multiraft.GroupID(g)}); err != nil {
				c.t.Fatal(err)
			}
		}
	}
}

// stop closes every host, then every WAL.
func (c *cluster) stop() {
	for i, h := range c.hosts {
		if h == nil {
			continue
		}
		_ = h.Close()
		if err := c.wals[i].Close(); err != nil {
			c.t.Error(err)
		}
		c.hosts[i] = nil
	}
}

func (c *cluster) createGroups(n int) {
	members := []multiraft.HostID{1, 2, 3}
	for g := multiraft.GroupID(1); g <= multiraft.GroupID(n); g++ {
		for _, h := range c.hosts {
			if err := h.CreateGroup(multiraft.GroupConfig{ID: g, Members: members}); err != nil {
				c.t.Fatal(err)
			}
		}
	}
}

// settle runs every host's pending work until none has any.
func (c *cluster) settle() {
	for i := 0; ; i++ {
		if i > 10000 {
			c.t.Fatal("cluster does not settle")
		}
		busy := false
		for _, h := range c.hosts {
			before := h.Stats().Rounds
			if err := h.RunPending(); err != nil {
				c.t.Fatal(err)
			}
			busy = busy || h.Stats().Rounds != before
		}
		if !busy {
			return
		}
	}
}

// tick ticks every host n times, settling after each tick.
// announceTicks is how many ticks after a write its commit index reaches
// every member at the latest: a leader holds commit announcements until
// its first heartbeat that a recent append does not spare
// (AppendSparesTicks 4 + HeartbeatTick 1 with these hosts' defaults; see
// multiraft/announce.go).
const announceTicks = 5

func (c *cluster) tick(n int) {
	for i := 0; i < n; i++ {
		for _, h := range c.hosts {
			h.Tick()
		}
		c.settle()
	}
}

// leader returns the host leading g in the highest term, or 0.
func (c *cluster) leader(g multiraft.GroupID) multiraft.HostID {
	var lead multiraft.HostID
	var term uint64
	for _, h := range c.hosts {
		st, err := h.Status(g)
		if err == nil && st.RaftState == raft.StateLeader && st.Term >= term {
			lead, term = h.ID(), st.Term
		}
	}
	return lead
}

// leaderless returns the groups among 1..n without a leader.
func (c *cluster) leaderless(n int) []multiraft.GroupID {
	var out []multiraft.GroupID
	for g := multiraft.GroupID(1); g <= multiraft.GroupID(n); g++ {
		if c.leader(g) == 0 {
			out = append(out, g)
		}
	}
	return out
}

// elect ticks until every group among 1..n has a leader.
func (c *cluster) elect(n int) {
	for i := 0; i < 100; i++ {
		if len(c.leaderless(n)) == 0 {
			return
		}
		c.tick(1)
	}
	c.t.Fatalf("groups without a leader after 100 ticks: %v", c.leaderless(n))
}

// write proposes one entry per group among 1..n at its leader, with data
// naming the group and round, and settles.
func (c *cluster) write(n, round int) {
	for g := multiraft.GroupID(1); g <= multiraft.GroupID(n); g++ {
		if err := c.hosts[c.leader(g)-1].Propose(g, []byte(entryData(g, round))); err != nil {
			c.t.Fatal(err)
		}
	}
	c.settle()
}

func entryData(g multiraft.GroupID, round int) string { return fmt.Sprintf("g%d-w%d", g, round) }

// checkApplied fails unless every host applied exactly the writes of
// rounds 0..rounds-1 in every group among 1..n, in order.
func (c *cluster) checkApplied(n, rounds int) {
	c.t.Helper()
	for g := multiraft.GroupID(1); g <= multiraft.GroupID(n); g++ {
		var want []string
		for r := 0; r < rounds; r++ {
			want = append(want, entryData(g, r))
		}
		for i, a := range c.apps {
			if got := a.entries(g); fmt.Sprint(got) != fmt.Sprint(want) {
				c.t.Fatalf("host %d group %d applied %v, want %v", i+1, g, got, want)
			}
		}
	}
}

// fsyncs returns the fsyncs of all hosts' WALs so far.
func (c *cluster) fsyncs() uint64 {
	var n uint64
	for _, w := range c.wals {
		n += w.Stats().Fsyncs
	}
	return n
}

// TestRestartRecoversEveryGroup runs 300 groups on 3 hosts, each host's
// groups in one shared WAL: writes commit in every group, then all hosts
// stop and restart from their WALs, and every group re-applies its
// committed writes, elects a leader again and commits more.
func TestRestartRecoversEveryGroup(t *testing.T) {
	const groups, rounds = 300, 3
	c := newCluster(t, 0)
	c.createGroups(groups)
	c.elect(groups)
	for r := 0; r < rounds; r++ {
		c.write(groups, r)
	}
	c.tick(announceTicks) // followers learn the last commit index
	c.checkApplied(groups, rounds)

	c.stop()
	c.start()
	for i, w := range c.wals {
		if got := len(w.GroupIDs()); got != groups {
			t.Fatalf("host %d recovered %d groups, want %d", i+1, got, groups)
		}
	}
	c.settle()
	c.elect(groups)
	c.checkApplied(groups, rounds)
	c.write(groups, rounds)
	c.tick(announceTicks)
	c.checkApplied(groups, rounds+1)
}

// TestFsyncsAmortisedAcrossGroups checks that a host's groups share their
// fsyncs: a round of a worker saves the Readys of up to MaxBatch groups
// with one SaveBatch, hence one fsync. Every write needs a synced append
// on the leader and on each follower, so a host that synced each group on
// its own (MaxBatch 1) pays at least one fsync per write per host; with
// batching, the whole cluster pays a small fraction of one per write.
func TestFsyncsAmortisedAcrossGroups(t *testing.T) {
	perWrite := func(groups, maxBatch int) float64 {
		c := newCluster(t, maxBatch)
		c.createGroups(groups)
		c.elect(groups)
		c.write(groups, 0)
		before := c.fsyncs()
		const rounds = 3
		for r := 1; r <= rounds; r++ {
			c.write(groups, r)
		}
		f := float64(c.fsyncs()-before) / float64(groups*rounds)
		c.stop()
		return f
	}
	batched := perWrite(300, 64)
	single := perWrite(20, 1)
	t.Logf("fsyncs per write, all 3 hosts: %.3f with 300 groups, MaxBatch 64; %.2f with MaxBatch 1",
		batched, single)
	if single < nHosts {
		t.Errorf("MaxBatch 1: %.2f fsyncs per write, want at least %d (one per host)", single, nHosts)
	}
	if batched > 0.1 {
		t.Errorf("MaxBatch 64: %.3f fsyncs per write over 3 hosts, want at most 0.1", batched)
	}
}

// TestRemovedGroupStaysRemoved removes a group on every host: its state
// leaves the WAL, a restart does not bring it back, and the other groups
// recover.
func TestRemovedGroupStaysRemoved(t *testing.T) {
	const groups = 6
	c := newCluster(t, 0)
	c.createGroups(groups)
	c.elect(groups)
	c.write(groups, 0)
	c.tick(announceTicks)
	for _, h := range c.hosts {
		if err := h.RemoveGroup(3); err != nil {
			t.Fatal(err)
		}
	}
	c.settle()
	c.stop()
	c.start()
	for i, w := range c.wals {
		if got := fmt.Sprint(w.GroupIDs()); got != "[1 2 4 5 6]" {
			t.Fatalf("host %d: groups %s after removing group 3, want [1 2 4 5 6]", i+1, got)
		}
	}
	if err := New(c.wals[0]).Remove(3); err != nil {
		t.Fatalf("removing a group twice: %v", err)
	}
	c.settle()
	for i := 0; c.leader(1)*c.leader(2)*c.leader(4)*c.leader(5)*c.leader(6) == 0; i++ {
		if i == 100 {
			t.Fatal("recovered groups without a leader after 100 ticks")
		}
		c.tick(1)
	}
}

// compactAll has every host compact every group among 1..n at the index it
// applied, with the applied entries as the snapshot's data.
func (c *cluster) compactAll(n int) {
	for i, h := range c.hosts {
		for g := multiraft.GroupID(1); g <= multiraft.GroupID(n); g++ {
			st, err := h.Status(g)
			if err != nil {
				c.t.Fatal(err)
			}
			data := strings.Join(c.apps[i].entries(g), "\n")
			if err := h.Compact(g, st.Applied, []byte(data)); err != nil {
				c.t.Fatal(err)
			}
		}
	}
	c.settle()
}

// TestCompactedGroupsRecover compacts every group's log on every host into
// a snapshot, writes more, and restarts: each group restores its snapshot
// from the WAL, then applies the entries after it.
func TestCompactedGroupsRecover(t *testing.T) {
	const groups = 30
	c := newCluster(t, 0)
	c.createGroups(groups)
	c.elect(groups)
	c.write(groups, 0)
	c.write(groups, 1)
	c.tick(announceTicks)
	c.compactAll(groups)
	c.write(groups, 2)
	c.tick(announceTicks)
	for i, w := range c.wals {
		for g := uint64(1); g <= groups; g++ {
			v, err := w.Group(g)
			if err != nil {
				t.Fatal(err)
			}
			snap, _ := v.Snapshot()
			first, _ := v.FirstIndex()
			if snap.Metadata.Index == 0 || first != snap.Metadata.Index+1 {
				t.Fatalf("host %d group %d: snapshot at %d, first index %d: not compacted", i+1, g,
					snap.Metadata.Index, first)
			}
		}
	}
	c.stop()
	c.start()
	c.settle()
	c.checkApplied(groups, 3)
	c.elect(groups)
	c.write(groups, 3)
	c.tick(announceTicks)
	c.checkApplied(groups, 4)
}
