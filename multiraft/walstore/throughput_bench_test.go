package walstore

import (
	"encoding/binary"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/raftkit/raft"
	"github.com/raftkit/raft/multiraft"
	"github.com/raftkit/raft/raftpb"
	"github.com/raftkit/raft/transport"
	"github.com/raftkit/raft/wal/shared"
)

// BenchmarkThroughput measures what issue 16 asks of many groups: 3 hosts
// in one process, each persisting all its groups in its own shared WAL
// (fsync on, in a temporary directory), connected by NetTransport over
// loopback TCP; K closed-loop writers (each proposes one 128-byte write at
// its group's leader and waits until that leader's host applied it) spread
// round-robin over G groups whose leaders are spread over the hosts. One
// op is one write. Reported: writes/s, p50 and p99 commit latency, CPU
// time of the process per 1,000 writes (rusage: user and system) and
// fsyncs of all three WALs per write, the writes per WAL batch and
// groups per round, and the groups whose term changed during the run
// (elections: there is no failure, so any is a spurious one).
//
//	go test ./multiraft/walstore -run '^$' -bench Throughput -benchtime 20000x
//
// THROUGHPUT_GROUPS (comma-separated, default 1,16,64,256,1000),
// THROUGHPUT_CLIENTS (default 256) and THROUGHPUT_WORKERS (default 2)
// change the shape; THROUGHPUT_PACE sets HostConfig.MinSaveInterval and
// THROUGHPUT_NOSYNC=1 turns fsync off; THROUGHPUT_ASYNC=1 runs the hosts
// with HostConfig.AsyncSaves.
func BenchmarkThroughput(b *testing.B) {
	groups := envInts("THROUGHPUT_GROUPS", []int{1, 16, 64, 256, 1000})
	clients := envInts("THROUGHPUT_CLIENTS", []int{256})[0]
	workers := envInts("THROUGHPUT_WORKERS", []int{2})[0]
	for _, g := range groups {
		// One cluster per shape, shared by the runs of b.Run (the first
		// has N=1): setting up 1,000 groups is not what is measured.
		c := newNetCluster(b, g, workers)
		b.Run(fmt.Sprintf("groups=%d/clients=%d", g, clients), func(b *testing.B) { c.run(b, clients) })
		c.close()
	}
}

// benchPace is HostConfig.MinSaveInterval, from THROUGHPUT_PACE (a
// duration, -1ns for none; default: the host's default).
func benchPace() time.Duration {
	d, _ := time.ParseDuration(os.Getenv("THROUGHPUT_PACE"))
	return d
}

func envInts(name string, def []int) []int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	var out []int
	for _, f := range splitComma(s) {
		n, err := strconv.Atoi(f)
		if err != nil || n <= 0 {
			panic(fmt.Sprintf("%s: bad value %q", name, f))
		}
		out = append(out, n)
	}
	return out
}

func splitComma(s string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == ',' {
			if i > start {
				out = append(out, s[start:i])
			}
			start = i + 1
		}
	}
	return out
}

// netCluster is 3 hosts with workers and tickers, over shared WALs and
// NetTransports on loopback.
type netCluster struct {
	groups int
	wals   []*shared.WAL
	nets   []*multiraft.NetTransport
	hosts  []*multiraft.Host
	done   *completions
}

func newNetCluster(b *testing.B, groups, workers int) *netCluster {
	const n = 3
	c := &netCluster{groups: groups, done: newCompletions()}
	for i := 1; i <= n; i++ {
		nt, err := multiraft.NewNetTransport(multiraft.NetConfig{ListenAddr: "127.0.0.1:0",
			Stream: transport.BatchStreamConfig{ClusterID: 16, ID: uint64(i)}})
		if err != nil {
			b.Fatal(err)
		}
		c.nets = append(c.nets, nt)
	}
	for i, nt := range c.nets {
		for j, other := range c.nets {
			if i != j {
				nt.AddPeer(multiraft.HostID(j+1), other.Addr().String())
			}
		}
	}
	for i := 1; i <= n; i++ {
		// THROUGHPUT_NOSYNC=1 skips fsyncs, to tell disk-bound from
		// CPU-bound.
		w, err := shared.Open(b.TempDir(), &shared.Options{NoSync: os.Getenv("THROUGHPUT_NOSYNC") == "1"})
		if err != nil {
			b.Fatal(err)
		}
		var peers []multiraft.HostID
		for j := 1; j <= n; j++ {
			if j != i {
				peers = append(peers, multiraft.HostID(j))
			}
		}
		h, err := multiraft.New(multiraft.HostConfig{ID: multiraft.HostID(i), Peers: peers,
			Storage: New(w), Transport: c.nets[i-1], App: &benchApp{host: byte(i), done: c.done},
			Workers: workers, TickInterval: 100 * time.Millisecond, MaxInflightMsgs: 4096,
			Seed: int64(i), CheckQuorum: true, PreVote: true, MinSaveInterval: benchPace(),
			AsyncSaves: os.Getenv("THROUGHPUT_ASYNC") == "1"})
		if err != nil {
			b.Fatal(err)
		}
		c.nets[i-1].Serve(h)
		c.wals, c.hosts = append(c.wals, w), append(c.hosts, h)
	}
	c.createGroups(b)
	return c
}

func (c *netCluster) createGroups(b *testing.B) {
	members := []multiraft.HostID{1, 2, 3}
	for g := multiraft.GroupID(1); g <= multiraft.GroupID(c.groups); g++ {
		for _, h := range c.hosts {
			if err := h.CreateGroup(multiraft.GroupConfig{ID: g, Members: members}); err != nil {
				b.Fatal(err)
			}
		}
	}
	deadline := time.Now().Add(60 * time.Second)
	for g := multiraft.GroupID(1); g <= multiraft.GroupID(c.groups); g++ {
		want := c.hosts[int(g)%len(c.hosts)]
		for {
			lead := c.leader(g)
			if lead == want {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("group %d has no leader on host %d", g, want.ID())
			}
			// A follower that hears a leader refuses a campaign
			// (PreVote, CheckQuorum): move leadership instead.
			if lead != nil {
				_ = lead.TransferLeader(g, want.ID())
			} else {
				_ = want.Campaign(g)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// leader returns the host whose replica of g leads it, or nil.
func (c *netCluster) leader(g multiraft.GroupID) *multiraft.Host {
	for _, h := range c.hosts {
		if st, err := h.Status(g); err == nil && st.RaftState == raft.StateLeader {
			return h
		}
	}
	return nil
}

// terms returns each group's highest term over the hosts.
func (c *netCluster) terms() []uint64 {
	out := make([]uint64, c.groups)
	for g := range out {
		for _, h := range c.hosts {
			if st, err := h.Status(multiraft.GroupID(g + 1)); err == nil {
				out[g] = max(out[g], st.Term)
			}
		}
	}
	return out
}

func (c *netCluster) close() {
	for _, h := range c.hosts {
		_ = h.Close()
	}
	for _, nt := range c.nets {
		_ = nt.Close()
	}
	for _, w := range c.wals {
		_ = w.Close()
	}
}

func (c *netCluster) fsyncs() uint64 {
	var n uint64
	for _, w := range c.wals {
		n += w.Stats().Fsyncs
	}
	return n
}

// run has clients writers write b.N writes in all and reports the metrics.
func (c *netCluster) run(b *testing.B, clients int) {
	var next atomic.Int64
	lat := make([][]time.Duration, clients)
	fsyncs0, batches0 := c.fsyncs(), c.walBatches()
	rounds0, run0 := c.rounds()
	terms0 := c.terms()
	b.ResetTimer()
	cpu0, start := cpuTime(), time.Now()
	var wg sync.WaitGroup
	for k := 0; k < clients; k++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lat[k] = c.client(k, clients, &next, int64(b.N))
		}()
	}
	wg.Wait()
	elapsed, cpu := time.Since(start), cpuTime()-cpu0
	b.StopTimer()
	elections := 0
	for g, t := range c.terms() {
		if t != terms0[g] {
			elections++
		}
	}
	all := slices.Concat(lat...)
	slices.Sort(all)
	writes := float64(len(all))
	b.ReportMetric(writes/elapsed.Seconds(), "writes/s")
	b.ReportMetric(pct(all, 0.50), "p50-ms")
	b.ReportMetric(pct(all, 0.99), "p99-ms")
	b.ReportMetric(float64(cpu.Milliseconds())/writes*1000, "cpu-ms/1k")
	b.ReportMetric(float64(c.fsyncs()-fsyncs0)/writes, "fsyncs/write")
	b.ReportMetric(writes/float64(c.walBatches()-batches0), "writes/save")
	b.ReportMetric(float64(elections), "groups-reelected")
	rounds, run := c.rounds()
	b.ReportMetric(float64(run-run0)/float64(rounds-rounds0), "groups/round")
	// Group steps (a group's turn in a round, on any host) per write: a
	// count the machine's load does not blur, unlike the CPU time.
	b.ReportMetric(float64(run-run0)/writes, "steps/write")
	for i, h := range c.hosts {
		st := h.Stats()
		f, _, d := c.nets[i].Traffic()
		b.Logf("host %d: %+v frames=%d dropped=%d", h.ID(), st, f, d)
	}
}

func (c *netCluster) rounds() (rounds, groups uint64) {
	for _, h := range c.hosts {
		st := h.Stats()
		rounds, groups = rounds+st.Rounds, groups+st.GroupsRun
	}
	return rounds, groups
}

func (c *netCluster) walBatches() uint64 {
	var n uint64
	for _, w := range c.wals {
		n += w.Stats().Batches
	}
	return n
}

func pct(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	return float64(sorted[int(float64(len(sorted)-1)*p)].Microseconds()) / 1000
}

// client k writes to groups k, k+clients, ... (mod G) in turn, one write
// at a time, until the writers together took total writes; a write not
// applied within 2s (dropped by a leader change) is proposed again.
func (c *netCluster) client(k, clients int, next *atomic.Int64, total int64) []time.Duration {
	ch := c.done.register(k)
	var out []time.Duration
	payload := make([]byte, 128)
	var seq uint64
	for i := 0; next.Add(1) <= total; i++ {
		g := multiraft.GroupID(1 + (k+i*clients)%c.groups)
		start := time.Now()
		for {
			seq++
			h := c.leader(g)
			if h == nil {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			payload[0] = byte(h.ID())
			binary.BigEndian.PutUint32(payload[1:], uint32(k))
			binary.BigEndian.PutUint64(payload[5:], seq)
			_ = h.Propose(g, slices.Clone(payload))
			if waitSeq(ch, seq, 2*time.Second) {
				break
			}
		}
		out = append(out, time.Since(start))
	}
	return out
}

func waitSeq(ch chan uint64, seq uint64, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case s := <-ch:
			if s == seq {
				return true
			}
		case <-t.C:
			return false
		}
	}
}

// completions routes applied writes to their writers.
type completions struct {
	mu sync.Mutex
	ch map[int]chan uint64
}

func newCompletions() *completions { return &completions{ch: map[int]chan uint64{}} }

func (c *completions) register(k int) chan uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan uint64, 64)
	c.ch[k] = ch
	return ch
}

func (c *completions) notify(k int, seq uint64) {
	c.mu.Lock()
	ch := c.ch[k]
	c.mu.Unlock()
	if ch != nil {
		select {
		case ch <- seq:
		default:
		}
	}
}

// benchApp signals the writes that were proposed on its host.
type benchApp struct {
	host byte
	done *completions
}

func (a *benchApp) Apply(_ multiraft.GroupID, ents []raftpb.Entry) {
	for i := range ents {
		d := ents[i].Data
		if ents[i].Type != raftpb.EntryNormal || len(d) < 13 || d[0] != a.host {
			continue
		}
		a.done.notify(int(binary.BigEndian.Uint32(d[1:])), binary.BigEndian.Uint64(d[5:]))
	}
}

func (a *benchApp) ReadIndexDone(multiraft.GroupID, []raft.ReadState) {}

func (a *benchApp) Restore(multiraft.GroupID, raftpb.Snapshot) error { return nil }

// cpuTime returns the user and system CPU time the process used so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
