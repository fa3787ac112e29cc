package main

import (
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestParseCounts(t *testing.T) {
	if got, err := parseCounts("1, 64,1000"); err != nil || len(got) != 3 || got[0] != 1 || got[2] != 1000 {
		t.Fatalf("parseCounts: %v, %v", got, err)
	}
	for _, bad := range []string{"", "1,x", "0,4", "4,4"} {
		if _, err := parseCounts(bad); err == nil {
			t.Errorf("parseCounts(%q) accepted", bad)
		}
	}
}

// The summary takes medians per count and ratios to the base within each
// round, not between rounds: the machine's speed may drift.
func TestComparison(t *testing.T) {
	runs := [][]loadMetrics{
		{{perSec: 1000, p99: 50, cpuPer1k: 100}, {perSec: 2000, p99: 40, cpuPer1k: 80}, {perSec: 1500, p99: 60, cpuPer1k: 90}},
		{{perSec: 900, p99: 60, cpuPer1k: 110}, {perSec: 2200, p99: 40, cpuPer1k: 72}, {perSec: 1500, p99: 90, cpuPer1k: 99}},
	}
	lines := comparison([]int{1, 64}, runs)
	want := []string{
		"MEDIAN: shards=1 rounds=3 writes/s=1500 p50=0.0 p99=50.0 cpu_ms_per_1k=90.0 fsyncs_per_write=0.000",
		"MEDIAN: shards=64 rounds=3 writes/s=1500 p50=0.0 p99=60.0 cpu_ms_per_1k=99.0 fsyncs_per_write=0.000",
		"RATIO: shards=64/1 per round: writes/s 0.90, 1.10, 1.00; cpu per write 1.10, 0.90, 1.10; p99 1.20, 1.00, 1.50",
		"COMPARE: base=1 shards=64: writes/s=1.00 cpu=1.10 p99=1.20",
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Fatalf("comparison:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
}

// TestCompareRuns: "raftkv compare" runs each shard count once per round
// and ends with its COMPARE line.
func TestCompareRuns(t *testing.T) {
	r := startCLI(t, nil, "", "compare", "--shards", "1,2", "--rounds", "1", "--duration", "1s", "--clients", "4")
	if err := r.waitExit(t, 120*time.Second); err != nil {
		t.Fatalf("compare: %v\n%s", err, r.output())
	}
	for _, re := range []string{
		`(?m)^round=1 LOAD: shards=1 clients=4 writes/s=[1-9]`,
		`(?m)^round=1 LOAD: shards=2 clients=4 writes/s=[1-9]`,
		`(?m)^RATIO: shards=2/1 per round: writes/s \d+\.\d\d; cpu per write \d+\.\d\d; p99 \d+\.\d\d$`,
		`(?m)^COMPARE: base=1 shards=2: writes/s=\d+\.\d\d cpu=\d+\.\d\d p99=\d+\.\d\d$`,
	} {
		if !regexp.MustCompile(re).MatchString(r.output()) {
			t.Fatalf("no line matching %s:\n%s", re, r.output())
		}
	}
}
