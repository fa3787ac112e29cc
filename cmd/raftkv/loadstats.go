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

// msgMetrics count the raft messages a member sent: a single-group
// member's transport (per peer), a sharded member's host (per group
// message, however many share a frame).
var msgMetrics = []string{"raftkv_transport_messages_sent_total", "raftkv_multiraft_messages_sent_total"}

// memberCost is what the members have spent so far.
type memberCost struct {
	cpu    time.Duration
	fsyncs uint64
	// leaderChanges counts the leaders the members saw (each member
	// counts each change it sees, in every shard).
	leaderChanges uint64
	// walBytes and msgs are the bytes the members appended to their WALs
	// and the raft messages they sent; rounds and groupsRun are their
	// multiraft hosts' rounds and the shards those processed (zero for
	// single-group members).
	walBytes, msgs, rounds, groupsRun uint64
	// roundStep, roundSave and roundApplyWait are the seconds the
	// hosts' rounds spent per phase (multiraft.Stats.RoundStep ...).
	roundStep, roundSave, roundApplyWait float64
	// terms is the sum of the shards' terms (the group's, with one) as
	// the first member sees them: it grows with every election and
	// leader transfer, where leaderChanges also counts a member's first
	// sight of a shard's leader.
	terms uint64
}

func (a memberCost) sub(b memberCost) memberCost {
	return memberCost{cpu: a.cpu - b.cpu, fsyncs: a.fsyncs - b.fsyncs, leaderChanges: a.leaderChanges - b.leaderChanges,
		walBytes: a.walBytes - b.walBytes, msgs: a.msgs - b.msgs, rounds: a.rounds - b.rounds,
		groupsRun: a.groupsRun - b.groupsRun, terms: a.terms - b.terms,
		roundStep: a.roundStep - b.roundStep, roundSave: a.roundSave - b.roundSave,
		roundApplyWait: a.roundApplyWait - b.roundApplyWait}
}

// add adds one member's counters, as scrapeCounters returns them.
func (a *memberCost) add(counters map[string]float64) {
	sum := func(names ...string) uint64 {
		var n uint64
		for _, name := range names {
			n += uint64(counters[name])
		}
		return n
	}
	a.fsyncs += sum(fsyncMetrics...)
	a.leaderChanges += sum("raftkv_leader_changes_total")
	a.walBytes += sum("raftkv_wal_bytes_written_total")
	a.msgs += sum(msgMetrics...)
	a.rounds += sum("raftkv_multiraft_rounds_total")
	a.groupsRun += sum("raftkv_multiraft_groups_run_total")
	a.roundStep += counters["raftkv_multiraft_round_step_seconds_total"]
	a.roundSave += counters["raftkv_multiraft_round_save_seconds_total"]
	a.roundApplyWait += counters["raftkv_multiraft_round_apply_wait_seconds_total"]
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

// scrapeCounters reads a member's /metrics and returns each metric's
// value by name, summed over its labels.
func scrapeCounters(ctx context.Context, hc *http.Client, addr string) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s/metrics: %s", addr, resp.Status)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		// name{labels} value: the value follows the last space, and
		// label values may hold spaces.
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		name, val := line[:i], line[i+1:]
		if j := strings.IndexByte(name, '{'); j >= 0 {
			name = name[:j]
		}
		v, err := strconv.ParseFloat(val, 64)
		if err != nil {
			return nil, fmt.Errorf("%s/metrics: %s: %w", addr, name, err)
		}
		out[name] += v
	}
	return out, sc.Err()
}

// costTimeout bounds one reading of the members' costs (costWithin).
const costTimeout = 30 * time.Second

// costWithin is cost on a context of its own that ends after d: each
// reading gets its whole allowance however long the run between them
// lasted (one timeout spanning both readings failed every run of 30 s or
// more), and a Ctrl-C while reading still ends the run with its summary.
func (c *procCluster) costWithin(d time.Duration) (memberCost, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return c.cost(ctx)
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
		counters, err := scrapeCounters(ctx, hc, c.member(id).HTTPAddr)
		if err != nil {
			return total, err
		}
		total.cpu += cpu
		total.add(counters)
		if id == c.ids()[0] {
			st, err := c.client.Status(ctx, c.member(id).HTTPAddr)
			if err != nil {
				return total, err
			}
			total.terms = st.Term
			if len(st.Shards) > 0 {
				total.terms = 0
				for _, sh := range st.Shards {
					total.terms += sh.Term
				}
			}
		}
	}
	return total, nil
}

// costLine explains a run's cost per write: the WAL bytes and messages it
// took, and with shards how many shards a round (one WAL write and fsync,
// one frame per peer) carried.
func costLine(r loadResult, spent memberCost) string {
	if r.writes == 0 {
		return "no writes"
	}
	w := float64(r.writes)
	s := fmt.Sprintf("per write: %.0f WAL bytes, %.2f messages", float64(spent.walBytes)/w, float64(spent.msgs)/w)
	if spent.rounds > 0 {
		n := float64(spent.rounds)
		s += fmt.Sprintf("; %d host rounds (all members), %.1f shards per round", spent.rounds, float64(spent.groupsRun)/n)
		s += fmt.Sprintf("; a round's mean: step %.2f ms, save %.2f ms, apply wait %.2f ms",
			1e3*spent.roundStep/n, 1e3*spent.roundSave/n, 1e3*spent.roundApplyWait/n)
	}
	return s
}

// loadMetrics are the numbers of a LOAD line: writes per second, p50 and
// p99 in milliseconds, the members' CPU milliseconds per 1000 writes and
// fsyncs per write.
type loadMetrics struct {
	perSec, p50, p99, cpuPer1k, fsyncsPer float64
}

func metricsOf(r loadResult, spent memberCost) loadMetrics {
	var m loadMetrics
	if r.elapsed > 0 {
		m.perSec = float64(r.writes) / r.elapsed.Seconds()
	}
	if r.writes > 0 {
		m.cpuPer1k = float64(spent.cpu.Milliseconds()) * 1000 / float64(r.writes)
		m.fsyncsPer = float64(spent.fsyncs) / float64(r.writes)
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	m.p50, m.p99 = ms(r.p50), ms(r.p99)
	return m
}

// loadLine is the one-line summary a run ends with, for scripts to parse;
// an open-loop run (rate above 0) adds its rate at the end.
func loadLine(shards, clients, rate int, m loadMetrics) string {
	line := fmt.Sprintf("LOAD: shards=%d clients=%d writes/s=%.0f p50=%.1f p99=%.1f cpu_ms_per_1k=%.1f fsyncs_per_write=%.3f",
		shards, clients, m.perSec, m.p50, m.p99, m.cpuPer1k, m.fsyncsPer)
	if rate > 0 {
		line += fmt.Sprintf(" rate=%d", rate)
	}
	return line
}
