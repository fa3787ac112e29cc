package main

import (
	"context"
	"flag"
	"fmt"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// runCompare runs load once per shard count per round, the counts in
// turn (in reverse order every other round, so that no count always runs
// right after another), prints each run's LOAD line, and ends with each
// count's medians and, round by round, its ratios to the first count's
// run of the same round. On a shared machine whose speed drifts from
// minute to minute, the ratios within a round are what can be trusted;
// this is how the README's tables of issue 16 are measured.
func runCompare(args []string) error {
	fs := flag.NewFlagSet("compare", flag.ExitOnError)
	var o loadOpts
	o.register(fs)
	list := fs.String("shards", "1,64", "shard counts to compare, comma-separated; the first is the base of the ratios")
	rounds := fs.Int("rounds", 3, "rounds: each runs every shard count once")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	counts, err := parseCounts(*list)
	if err != nil {
		return err
	}
	if *rounds < 1 {
		return fmt.Errorf("compare: --rounds %d: want at least 1", *rounds)
	}
	o.shards = counts[0]
	if err := o.check(); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	stopWithParentUnderGoRun()
	runs, err := compareRounds(ctx, o, counts, *rounds)
	if err != nil {
		return err
	}
	for _, line := range comparison(counts, runs) {
		fmt.Println(line)
	}
	return nil
}

// parseCounts reads a comma-separated list of distinct shard counts.
func parseCounts(list string) ([]int, error) {
	var counts []int
	for _, f := range strings.Split(list, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("compare: --shards %q: want shard counts of at least 1, comma-separated", list)
		}
		if slices.Contains(counts, n) {
			return nil, fmt.Errorf("compare: --shards %q: %d appears twice", list, n)
		}
		counts = append(counts, n)
	}
	return counts, nil
}

// compareRounds runs the rounds and returns, per shard count (in counts'
// order), the metrics of its run in each completed round. A Ctrl-C ends
// it after the runs so far.
func compareRounds(ctx context.Context, o loadOpts, counts []int, rounds int) ([][]loadMetrics, error) {
	runs := make([][]loadMetrics, len(counts))
	base := o.dir
	for r := 1; r <= rounds; r++ {
		order := make([]int, len(counts))
		for i := range order {
			order[i] = i
		}
		if r%2 == 0 {
			slices.Reverse(order)
		}
		got := make([]loadMetrics, len(counts))
		for _, i := range order {
			o.shards = counts[i]
			if base != "" {
				o.dir = filepath.Join(base, fmt.Sprintf("round%d-shards%d", r, counts[i]))
			}
			out, err := loadOnce(ctx, o)
			if err != nil {
				return nil, err
			}
			if out.interrupted {
				return runs, nil
			}
			fmt.Printf("round=%d %s\n", r, out.line)
			got[i] = out.m
		}
		for i := range counts {
			runs[i] = append(runs[i], got[i])
		}
	}
	return runs, nil
}

// comparison summarises runs (per shard count, per round): a MEDIAN line
// per count, a RATIO line per count but the first with its ratios to the
// first count, round by round, and a last COMPARE line with the medians
// of those ratios.
func comparison(counts []int, runs [][]loadMetrics) []string {
	var lines []string
	for i, n := range counts {
		med := func(f func(loadMetrics) float64) float64 { return median(runs[i], f) }
		lines = append(lines, fmt.Sprintf("MEDIAN: shards=%d rounds=%d writes/s=%.0f p50=%.1f p99=%.1f cpu_ms_per_1k=%.1f fsyncs_per_write=%.3f",
			n, len(runs[i]), med(perSec), med(p50), med(p99), med(cpuPer1k), med(fsyncsPer)))
	}
	final := fmt.Sprintf("COMPARE: base=%d", counts[0])
	for i := 1; i < len(counts); i++ {
		var w, c, p []float64
		for r := range runs[i] {
			b, x := runs[0][r], runs[i][r]
			w, c, p = append(w, ratio(x.perSec, b.perSec)), append(c, ratio(x.cpuPer1k, b.cpuPer1k)), append(p, ratio(x.p99, b.p99))
		}
		lines = append(lines, fmt.Sprintf("RATIO: shards=%d/%d per round: writes/s %s; cpu per write %s; p99 %s",
			counts[i], counts[0], ratios(w), ratios(c), ratios(p)))
		final += fmt.Sprintf(" shards=%d: writes/s=%.2f cpu=%.2f p99=%.2f", counts[i], medianOf(w), medianOf(c), medianOf(p))
	}
	return append(lines, final)
}

func perSec(m loadMetrics) float64    { return m.perSec }
func p50(m loadMetrics) float64       { return m.p50 }
func p99(m loadMetrics) float64       { return m.p99 }
func cpuPer1k(m loadMetrics) float64  { return m.cpuPer1k }
func fsyncsPer(m loadMetrics) float64 { return m.fsyncsPer }

func ratio(x, base float64) float64 {
	if base == 0 {
		return 0
	}
	return x / base
}

func ratios(v []float64) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = strconv.FormatFloat(x, 'f', 2, 64)
	}
	return strings.Join(s, ", ")
}

func median(ms []loadMetrics, f func(loadMetrics) float64) float64 {
	v := make([]float64, len(ms))
	for i, m := range ms {
		v[i] = f(m)
	}
	return medianOf(v)
}

// medianOf returns the median of v (the mean of the middle two for an
// even count), 0 for none.
func medianOf(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if n := len(s); n%2 == 1 {
		return s[n/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
