package main

import (
	"bytes"
	"regexp"
	"strings"
	"testing"

	"github.com/raftkit/raft/benchmarks/shared"
)

// TestCrossbenchLine checks the last line against the form the issue fixes
// for automatic checks: one item per throughput row, every library's median
// commits/s in the fixed order, 0 for a library whose runs all failed.
func TestCrossbenchLine(t *testing.T) {
	rows := buildRows(flags{quick: true})
	res := map[string]map[string][]shared.Result{}
	for _, rw := range rows {
		res[rw.name] = map[string][]shared.Result{
			"raftkit":   {{PerSec: 300}, {PerSec: 100}, {PerSec: 200}},
			"etcd36":    {{PerSec: 10}, {PerSec: 30}},
			"hashicorp": {{PerSec: 7.6}},
		}
	}
	var out bytes.Buffer
	report(&out, rows, res)
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	last := lines[len(lines)-1]
	item := `[a-z]+-p\d+-\d+(B|KiB)=raftkit:\d+,etcd36:\d+,etcd37:\d+,hashicorp:\d+`
	if !regexp.MustCompile(`^CROSSBENCH: ` + item + `( ` + item + `)*$`).MatchString(last) {
		t.Fatalf("last line %q is not in the CROSSBENCH form", last)
	}
	if n := strings.Count(last, "="); n != 4 {
		t.Errorf("%d items, want one per quick throughput row (4)", n)
	}
	if !strings.Contains(last, "fsync-p1-128B=raftkit:200,etcd36:20,etcd37:0,hashicorp:8") {
		t.Errorf("medians: %q", last)
	}
}

// TestThroughputTableShowsCPU: each throughput row of the table carries the
// median CPU time per commit after the latencies.
func TestThroughputTableShowsCPU(t *testing.T) {
	rows := buildRows(flags{quick: true})[:1]
	res := map[string]map[string][]shared.Result{rows[0].name: {
		"raftkit": {{PerSec: 100, CPUUsPerCommit: 40}, {PerSec: 100, CPUUsPerCommit: 60}, {PerSec: 100, CPUUsPerCommit: 50}},
	}}
	var out bytes.Buffer
	report(&out, rows, res)
	if !strings.Contains(out.String(), "| fsync-p1-128B | raftkit | 100 [100-100] | 0.00 [0.00-0.00] | 0.00 [0.00-0.00] | 50.0 [40.0-60.0] |") {
		t.Fatalf("no CPU column in:\n%s", out.String())
	}
}
