package multiraft

import (
	"fmt"
	"runtime"
	"syscall"
	"testing"
	"time"
)

// cpuTime returns the user and system CPU time the process used so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkIdle measures what idle groups cost: 3 hosts in manual mode
// over a MemNetwork, every group with a leader (spread over the hosts) and
// nothing to do, quiesced or kept ticking. One op is one tick of every
// host and the processing it causes. Reported per group and tick: CPU
// time of the process (rusage, so that other load on the machine does not
// count) and network bytes; per group: heap bytes (its 3 replicas); and
// the CPU share of one core each host would use at 10 ticks per second.
// Groups kept ticking run with coalesced heartbeats and, for comparison,
// with heartbeats sent as messages of their own (HostConfig.
// SeparateHeartbeats).
func BenchmarkIdle(b *testing.B) {
	for _, groups := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("groups=%d/quiesce=true", groups), func(b *testing.B) {
			benchIdle(b, groups, true, false)
		})
		for _, separate := range []bool{false, true} {
			b.Run(fmt.Sprintf("groups=%d/quiesce=false/separate=%v", groups, separate), func(b *testing.B) {
				benchIdle(b, groups, false, separate)
			})
		}
	}
}

func benchIdle(b *testing.B, groups int, quiesce, separate bool) {
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	c := newManualCluster(b, 3, func(cfg *HostConfig) {
		cfg.DisableQuiescence = !quiesce
		cfg.SeparateHeartbeats = separate
	})
	for g := GroupID(1); g <= GroupID(groups); g++ {
		c.createGroup(g)
		_ = c.hosts[HostID(1+int(g)%3)].Campaign(g)
	}
	c.settle()
	c.tick(20)
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	awake := 0
	for _, h := range c.hosts {
		awake += h.Stats().Awake
	}
	if quiesce && awake != 0 {
		b.Fatalf("%d replicas still awake", awake)
	}
	_, bytes0 := c.net.Traffic()
	b.ResetTimer()
	cpu0 := cpuTime()
	c.tick(b.N)
	cpu := cpuTime() - cpu0
	b.StopTimer()
	_, bytes1 := c.net.Traffic()
	perTick := float64(cpu.Nanoseconds()) / float64(b.N)
	b.ReportMetric(perTick/float64(groups), "ns/group/tick")
	b.ReportMetric(float64(bytes1-bytes0)/float64(b.N)/float64(groups), "netB/group/tick")
	b.ReportMetric((float64(after.HeapAlloc)-float64(before.HeapAlloc))/float64(groups), "heapB/group")
	c.release()
	// Each host does a third of the work; at 10 ticks/s:
	b.ReportMetric(perTick/3*10/1e9*100, "cpu%/host@10ticks/s")
}

// syncedStorage makes each SaveBatch that needs a sync wait d, as an
// fsync would: one wait per batch, whatever the number of groups in it.
type syncedStorage struct {
	*MemStorage
	d time.Duration
}

func (s syncedStorage) SaveBatch(us []GroupUpdate) error {
	for _, u := range us {
		if u.MustSync {
			time.Sleep(s.d)
			break
		}
	}
	return s.MemStorage.SaveBatch(us)
}

// BenchmarkWrites measures write throughput with many groups against one:
// 3 hosts with 2 workers each over a MemNetwork, storage that waits 1ms
// per synced SaveBatch (a simulated fsync, one per batch of groups),
// writes of 128 bytes spread round-robin over the groups and proposed at
// their leaders, 512 in flight. Reported: writes/s, and per write the
// SaveBatch calls (fsyncs) and the batches (frames) sent by all hosts.
func BenchmarkWrites(b *testing.B) {
	for _, groups := range []int{1, 16, 256} {
		b.Run(fmt.Sprintf("groups=%d", groups), func(b *testing.B) { benchWrites(b, groups) })
	}
}

func benchWrites(b *testing.B, groups int) {
	net := NewMemNetwork()
	stores := map[HostID]*MemStorage{}
	c := startLive(b, 3, net.Endpoint, func(cfg *HostConfig) {
		// Slow ticks: a loaded machine must not cause elections, which
		// drop in-flight proposals.
		cfg.TickInterval = 100 * time.Millisecond
		cfg.MaxInflightMsgs = 4096
		if benchMaxBatch > 0 {
			cfg.MaxBatch = benchMaxBatch
		}
		stores[cfg.ID] = cfg.Storage.(*MemStorage)
		cfg.Storage = syncedStorage{stores[cfg.ID], time.Millisecond}
	})
	for _, h := range c.hosts {
		net.Attach(h)
	}
	c.createGroups(b, groups)
	c.writeAll(b, groups, 1, 30*time.Second)
	w := &writer{c: c, groups: groups, base: make([]int, groups+1), sent: make([]int, groups+1)}
	for g := 1; g <= groups; g++ {
		w.base[g] = w.applied(g)
	}
	saves0, frames0 := traffic(c, stores)
	const window = 512
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		if i >= window && i%window == 0 {
			w.wait(b, i-window)
		}
		w.propose(1+i%groups, 1)
	}
	w.wait(b, b.N)
	elapsed := time.Since(start)
	b.StopTimer()
	saves, frames := traffic(c, stores)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "writes/s")
	b.ReportMetric(float64(saves-saves0)/float64(b.N), "saves/write")
	b.ReportMetric(float64(frames-frames0)/float64(b.N), "frames/write")
}

func traffic(c *liveCluster, stores map[HostID]*MemStorage) (saves, frames uint64) {
	for _, h := range c.hosts {
		calls, _ := stores[h.ID()].Batches()
		saves += uint64(calls)
		frames += h.Stats().BatchesOut
	}
	return saves, frames
}

// writer proposes writes at each group's current leader and waits for
// them; writes a leader change dropped are proposed again.
type writer struct {
	c          *liveCluster
	groups     int
	base, sent []int
}

func (w *writer) leader(g int) (*Host, *recApp) {
	for i, h := range w.c.hosts {
		if st, err := h.Status(GroupID(g)); err == nil && st.Lead == h.ID() {
			return h, w.c.apps[i]
		}
	}
	return nil, nil
}

// applied is the writes of g applied on the host that applied most.
func (w *writer) applied(g int) int {
	n := 0
	for _, a := range w.c.apps {
		n = max(n, a.count(GroupID(g)))
	}
	return n
}

var benchMaxBatch = 0 // HostConfig.MaxBatch for BenchmarkWrites; 0: the default

var benchPayload = make([]byte, 128)

func (w *writer) propose(g, n int) {
	h, _ := w.leader(g)
	if h == nil {
		h = w.c.hosts[0]
	}
	for i := 0; i < n; i++ {
		_ = h.Propose(GroupID(g), benchPayload)
	}
	w.sent[g] += n
}

// wait waits until at least upto writes were applied in all, proposing
// again what seems lost after a second without progress.
func (w *writer) wait(b *testing.B, upto int) {
	deadline := time.Now().Add(60 * time.Second)
	last, lastChange := -1, time.Now()
	for {
		done := 0
		for g := 1; g <= w.groups; g++ {
			done += w.applied(g) - w.base[g]
		}
		if done >= upto {
			return
		}
		if done != last {
			last, lastChange = done, time.Now()
		} else if time.Since(lastChange) > time.Second {
			for g := 1; g <= w.groups; g++ {
				if lost := w.sent[g] - (w.applied(g) - w.base[g]); lost > 0 {
					w.sent[g] -= lost
					w.propose(g, lost)
				}
			}
			lastChange = time.Now()
		}
		if time.Now().After(deadline) {
			b.Fatalf("only %d of %d writes applied", done, upto)
		}
		time.Sleep(200 * time.Microsecond)
	}
}
