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
func BenchmarkIdle(b *testing.B) {
	for _, groups := range []int{1000, 10000} {
		for _, quiesce := range []bool{true, false} {
			b.Run(fmt.Sprintf("groups=%d/quiesce=%v", groups, quiesce), func(b *testing.B) {
				benchIdle(b, groups, quiesce)
			})
		}
	}
}

func benchIdle(b *testing.B, groups int, quiesce bool) {
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	c := newManualCluster(b, 3, func(cfg *HostConfig) { cfg.DisableQuiescence = !quiesce })
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

// BenchmarkWrites measures write throughput with many groups against one:
// 3 hosts with 2 workers each over a MemNetwork (no disk), writes spread
// round-robin over the groups and proposed at their leaders, 512 in
// flight. Reported: writes/s, and per write the SaveBatch calls and the
// batches (frames) sent by all hosts.
func BenchmarkWrites(b *testing.B) {
	for _, groups := range []int{1, 16, 256} {
		b.Run(fmt.Sprintf("groups=%d", groups), func(b *testing.B) { benchWrites(b, groups) })
	}
}

func benchWrites(b *testing.B, groups int) {
	net := NewMemNetwork()
	c := startLive(b, 3, net.Endpoint, func(cfg *HostConfig) {
		cfg.TickInterval = 10 * time.Millisecond
		cfg.MaxInflightMsgs = 4096
	})
	for _, h := range c.hosts {
		net.Attach(h)
	}
	c.createGroups(b, groups)
	c.writeAll(b, groups, 1, 30*time.Second)
	leaders := make([]*Host, groups+1)
	apps := make([]*recApp, groups+1)
	for g := 1; g <= groups; g++ {
		for i, h := range c.hosts {
			if st, _ := h.Status(GroupID(g)); st.Lead == h.ID() {
				leaders[g], apps[g] = h, c.apps[i]
			}
		}
		if leaders[g] == nil {
			b.Fatalf("group %d has no leader", g)
		}
	}
	base := make([]int, groups+1)
	for g := 1; g <= groups; g++ {
		base[g] = apps[g].count(GroupID(g))
	}
	var saves0, frames0 uint64
	for _, h := range c.hosts {
		calls, _ := h.cfg.Storage.(*MemStorage).Batches()
		saves0 += uint64(calls)
		frames0 += h.Stats().BatchesOut
	}
	payload := make([]byte, 128)
	const window = 512
	b.ResetTimer()
	start := time.Now()
	sent := make([]int, groups+1)
	for i := 0; i < b.N; i++ {
		g := 1 + i%groups
		if i >= window && i%window == 0 {
			waitApplied(b, apps, base, sent, i-window, groups)
		}
		_ = leaders[g].Propose(GroupID(g), payload)
		sent[g]++
	}
	waitApplied(b, apps, base, sent, b.N, groups)
	elapsed := time.Since(start)
	b.StopTimer()
	var saves, frames uint64
	for _, h := range c.hosts {
		calls, _ := h.cfg.Storage.(*MemStorage).Batches()
		saves += uint64(calls)
		frames += h.Stats().BatchesOut
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "writes/s")
	b.ReportMetric(float64(saves-saves0)/float64(b.N), "saves/write")
	b.ReportMetric(float64(frames-frames0)/float64(b.N), "frames/write")
}

// waitApplied waits until the leaders applied all but the last
// (total - upto) writes sent, judged per group.
func waitApplied(b *testing.B, apps []*recApp, base, sent []int, upto, groups int) {
	deadline := time.Now().Add(60 * time.Second)
	for {
		done := 0
		for g := 1; g <= groups; g++ {
			done += apps[g].count(GroupID(g)) - base[g]
		}
		if done >= upto {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("only %d of %d writes applied", done, upto)
		}
		time.Sleep(200 * time.Microsecond)
	}
}
