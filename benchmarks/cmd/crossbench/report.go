package main

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strings"

	"github.com/raftkit/raft/benchmarks/shared"
)

// stat is a median and the spread (min and max) of one measure over rounds.
type stat struct{ med, min, max float64 }

func statOf(rs []shared.Result, get func(shared.Result) float64) (stat, bool) {
	if len(rs) == 0 {
		return stat{}, false
	}
	v := make([]float64, len(rs))
	for i, r := range rs {
		v[i] = get(r)
	}
	sort.Float64s(v)
	med := v[len(v)/2]
	if len(v)%2 == 0 {
		med = (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	return stat{med: med, min: v[0], max: v[len(v)-1]}, true
}

func (s stat) String() string {
	return fmt.Sprintf("%s [%s-%s]", num(s.med), num(s.min), num(s.max))
}

func num(x float64) string {
	switch {
	case x >= 100:
		return fmt.Sprintf("%.0f", x)
	case x >= 10:
		return fmt.Sprintf("%.1f", x)
	}
	return fmt.Sprintf("%.2f", x)
}

func report(w io.Writer, rows []row, res map[string]map[string][]shared.Result) {
	var cross []string
	group := ""
	for _, rw := range rows {
		if rw.group != group {
			group = rw.group
			header(w, group)
		}
		for _, lib := range libs {
			rs := res[rw.name][lib]
			switch rw.group {
			case "failover":
				s, ok := statOf(rs, func(r shared.Result) float64 { return r.FailoverMs })
				fmt.Fprintf(w, "| %s | %s | %d |\n", lib, show(s, ok), len(rs))
			case "rss":
				rss, ok := statOf(rs, func(r shared.Result) float64 { return r.RSSMiB })
				heap, _ := statOf(rs, func(r shared.Result) float64 { return r.HeapMiB })
				tp, _ := statOf(rs, func(r shared.Result) float64 { return r.PerSec })
				n := 0
				if ok {
					n = rs[0].Commits
				}
				fmt.Fprintf(w, "| %s | %d | %s | %s | %s |\n", lib, n, show(rss, ok), show(heap, ok), show(tp, ok))
			default:
				tp, ok := statOf(rs, func(r shared.Result) float64 { return r.PerSec })
				p50, _ := statOf(rs, func(r shared.Result) float64 { return r.P50Ms })
				p99, _ := statOf(rs, func(r shared.Result) float64 { return r.P99Ms })
				cpu, _ := statOf(rs, func(r shared.Result) float64 { return r.CPUUsPerCommit })
				runq, _ := statOf(rs, func(r shared.Result) float64 { return r.RunqUsPerCommit })
				fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s |\n", rw.name, lib, show(tp, ok), show(p50, ok), show(p99, ok), show(cpu, ok), show(runq, ok))
			}
		}
		if rw.group == "fsync" || rw.group == "memory-storage" {
			cross = append(cross, rw.name+"="+crossItem(res[rw.name]))
		}
	}
	fmt.Fprintf(w, "\nCROSSBENCH: %s\n", strings.Join(cross, " "))
}

func header(w io.Writer, group string) {
	switch group {
	case "failover":
		fmt.Fprintln(w, "\n== leader failover: SIGKILL-like stop of the leader until the next proposal commits (ms, median [min-max])")
		fmt.Fprintln(w, "| library | failover ms | runs |\n| --- | --- | --- |")
	case "rss":
		fmt.Fprintln(w, "\n== memory: process RSS (3 voters in one process) after N committed proposals, fsync on, compaction every 10000 keeping 5000")
		fmt.Fprintln(w, "| library | N | RSS MiB | Go heap in use MiB | commits/s |\n| --- | --- | --- | --- | --- |")
	default:
		fmt.Fprintf(w, "\n== throughput, %s: median [min-max] over rounds (CPU: process CPU time per commit; run queue: time its threads waited for a CPU, per commit)\n", group)
		fmt.Fprintln(w, "| row | library | commits/s | p50 ms | p99 ms | CPU us/commit | run queue us/commit |\n| --- | --- | --- | --- | --- | --- | --- |")
	}
}

func show(s stat, ok bool) string {
	if !ok {
		return "failed"
	}
	return s.String()
}

// crossItem is one CROSSBENCH item's value: every library's median
// commits/s, 0 when it has no result.
func crossItem(m map[string][]shared.Result) string {
	var parts []string
	for _, lib := range libs {
		s, ok := statOf(m[lib], func(r shared.Result) float64 { return r.PerSec })
		v := 0.0
		if ok {
			v = s.med
		}
		parts = append(parts, fmt.Sprintf("%s:%d", lib, int64(math.Round(v))))
	}
	return strings.Join(parts, ",")
}
