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

// TestThroughputTableShowsCPUAndRunQueue: each throughput row of the table
// carries the median CPU time per commit after the latencies, then the
// median run-queue wait per commit.
func TestThroughputTableShowsCPUAndRunQueue(t *testing.T) {
	rows := buildRows(flags{quick: true})[:1]
	res := map[string]map[string][]shared.Result{rows[0].name: {
		"raftkit": {{PerSec: 100, CPUUsPerCommit: 40, RunqUsPerCommit: 7}, {PerSec: 100, CPUUsPerCommit: 60, RunqUsPerCommit: 300},
			{PerSec: 100, CPUUsPerCommit: 50, RunqUsPerCommit: 12}},
	}}
	var out bytes.Buffer
	report(&out, rows, res)
	if !strings.Contains(out.String(), "| row | library | commits/s | p50 ms | p99 ms | CPU us/commit | run queue us/commit |\n| --- | --- | --- | --- | --- | --- | --- |") {
		t.Errorf("no run queue column in the header:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "| fsync-p1-128B | raftkit | 100 [100-100] | 0.00 [0.00-0.00] | 0.00 [0.00-0.00] | 50.0 [40.0-60.0] | 12.0 [7.00-300] |") {
		t.Fatalf("no CPU and run queue columns in:\n%s", out.String())
	}
}

// TestResultLineParses: the driver reads back every field the runner
// reports in its RESULT line.
func TestResultLineParses(t *testing.T) {
	line := `RESULT {"lib":"raftkit","mode":"throughput","commits":100,"commits_per_sec":50,"mean_ms":1.5,"p999_ms":9.5,` +
		`"cpu_us_per_commit":40,"runq_us_per_commit":12.5,"vcsw_per_commit":4.25,"ivcsw_per_commit":0.5,"gcs":3,` +
		`"alloc_bytes_per_commit":9000,"allocs_per_commit":20}`
	res, err := parseResult(strings.NewReader("noise\n" + line + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := shared.Result{Lib: "raftkit", Mode: "throughput", Commits: 100, PerSec: 50, MeanMs: 1.5, P999Ms: 9.5,
		CPUUsPerCommit: 40, RunqUsPerCommit: 12.5, VolCSPerCommit: 4.25, InvolCSPerCommit: 0.5, GCs: 3,
		AllocBytesPerCommit: 9000, AllocsPerCommit: 20}
	if res != want {
		t.Fatalf("got %+v\nwant %+v", res, want)
	}
	if _, err := parseResult(strings.NewReader("no result here\n")); err == nil {
		t.Error("no error without a RESULT line")
	}
}
