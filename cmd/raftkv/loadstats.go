package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// The cost of a load run is measured on the member processes, not on the
// load generator: CPU from /proc/<pid>/stat (user plus system time) and
// fsyncs from each member's /metrics, read before and after the run.

// clockTicksPerSec is USER_HZ, the unit of the times in /proc/<pid>/stat.
// It is 100 on every Linux architecture Go supports (the kernel fixes it
// for user space), and reading it with sysconf would need cgo.
const clockTicksPerSec = 100

// fsyncMetrics are the counters of durable syncs a member exposes: raft's
// WAL group commits and the state machine store's synced commits.
var fsyncMetrics = []string{"raftkv_wal_fsyncs_total", "raftkv_state_syncs_total"}

// memberCost is what the members have spent so far.
type memberCost struct {
	cpu    time.Duration
	fsyncs uint64
	// leaderChanges counts the leaders the members saw (each member
	// counts each change it sees, in every shard).
	leaderChanges uint64
}

func (a memberCost) sub(b memberCost) memberCost {
	return memberCost{cpu: a.cpu - b.cpu, fsyncs: a.fsyncs - b.fsyncs, leaderChanges: a.leaderChanges - b.leaderChanges}
}

// processCPU returns the user plus system CPU time pid has used.
func processCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may hold spaces:
	// count fields after its closing parenthesis.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(s[i+1:])
	// After the name: state(3) ... utime(14) stime(15), so indexes 11, 12.
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	var ticks uint64
	for _, v := range f[11:13] {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / clockTicksPerSec, nil
}

// scrapeCounters sums the named counters in a member's /metrics.
func scrapeCounters(ctx context.Context, hc *http.Client, addr string, names []string) (uint64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET %s/metrics: %s", addr, resp.Status)
	}
	var total uint64
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), " ")
		if !ok || !contains(names, name) {
			continue
		}
		v, err := strconv.ParseFloat(val, 64)
		if err != nil {
			return 0, fmt.Errorf("%s/metrics: %s: %w", addr, name, err)
		}
		total += uint64(v)
	}
	return total, sc.Err()
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// cost reads what every running member has spent so far.
func (c *procCluster) cost(ctx context.Context) (memberCost, error) {
	hc := &http.Client{Timeout: 5 * time.Second}
	var total memberCost
	for _, id := range c.ids() {
		p := c.procs[id]
		if p == nil || !c.running(id) {
			return total, fmt.Errorf("member %d is not running", id)
		}
		cpu, err := processCPU(p.cmd.Process.Pid)
		if err != nil {
			return total, err
		}
		n, err := scrapeCounters(ctx, hc, c.member(id).HTTPAddr, fsyncMetrics)
		if err != nil {
			return total, err
		}
		lc, err := scrapeCounters(ctx, hc, c.member(id).HTTPAddr, []string{"raftkv_leader_changes_total"})
		if err != nil {
			return total, err
		}
		total.cpu += cpu
		total.fsyncs += n
		total.leaderChanges += lc
	}
	return total, nil
}

// loadLine is the one-line summary a run ends with, for scripts to parse.
func loadLine(shards, clients int, r loadResult, spent memberCost) string {
	perSec, cpuPer1k, fsyncsPer := 0.0, 0.0, 0.0
	if r.elapsed > 0 {
		perSec = float64(r.writes) / r.elapsed.Seconds()
	}
	if r.writes > 0 {
		cpuPer1k = float64(spent.cpu.Milliseconds()) * 1000 / float64(r.writes)
		fsyncsPer = float64(spent.fsyncs) / float64(r.writes)
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	return fmt.Sprintf("LOAD: shards=%d clients=%d writes/s=%.0f p50=%.1f p99=%.1f cpu_ms_per_1k=%.1f fsyncs_per_write=%.3f",
		shards, clients, perSec, ms(r.p50), ms(r.p99), cpuPer1k, fsyncsPer)
}
