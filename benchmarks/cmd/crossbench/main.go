// Command crossbench runs the cross-library benchmark: every row against
// every library's binary (bench-raftkit, bench-etcd36, bench-etcd37,
// bench-hashicorp), rounds interleaved so that a slow phase of the machine
// hits every library alike, and prints the machine, a table per row group,
// and the CROSSBENCH line with each throughput row's median commits/s.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/raftkit/raft/benchmarks/shared"
)

var libs = []string{"raftkit", "etcd36", "etcd37", "hashicorp"}

// row is one measured configuration; args go to every library's binary.
type row struct {
	group string // "fsync", "memory-storage", "failover", "rss"
	name  string
	args  []string
}

type flags struct {
	bin      string
	dataDir  string
	quick    bool
	rounds   int
	duration time.Duration
	warmup   time.Duration
	n        int
	only     string
	failover int
	rssRuns  int
	rssProps int
	rows     string
	portBase int
}

// portSlots is how many runs' port triples the driver cycles through, so
// that a run never reuses the ports of the run just before it (which may
// still be in TIME_WAIT); each run's voters take 3 ports of its 10.
const portSlots = 40

// runPort is the first voter port of run number seq.
func runPort(base, seq int) int { return base + (seq%portSlots)*10 }

func main() {
	var f flags
	flag.StringVar(&f.bin, "bin", "bin", "directory holding the bench-<lib> binaries")
	flag.StringVar(&f.dataDir, "data", "", "directory for the voters' data (default: the system temp dir)")
	flag.BoolVar(&f.quick, "quick", false, "reduced set: 4 throughput rows, short runs, small memory row")
	flag.IntVar(&f.rounds, "rounds", 3, "interleaved rounds")
	flag.DurationVar(&f.duration, "duration", 5*time.Second, "measured time per throughput run")
	flag.DurationVar(&f.warmup, "warmup", time.Second, "unmeasured time before each throughput run")
	flag.IntVar(&f.n, "n", 1000000, "committed proposals before the memory reading")
	flag.IntVar(&f.rssProps, "rss-proposers", 256, "concurrent proposers of the memory row")
	flag.IntVar(&f.rssRuns, "rss-rounds", 1, "rounds that run the memory row (the first ones)")
	flag.StringVar(&f.only, "libs", strings.Join(libs, ","), "libraries to run")
	flag.StringVar(&f.rows, "rows", "", "comma-separated row names to run (default: all), e.g. fsync-p1-128B,failover")
	flag.IntVar(&f.failover, "failover-runs", 5, "failover runs per library per round (quick: 1)")
	flag.IntVar(&f.portBase, "port-base", 24000, "first loopback port; runs use the 400 ports from it (two drivers at once need bases 400 apart)")
	flag.Parse()
	if f.portBase < 1024 || f.portBase+portSlots*10 > 65535 {
		fmt.Fprintf(os.Stderr, "crossbench: -port-base %d: want 1024 to %d\n", f.portBase, 65535-portSlots*10)
		os.Exit(2)
	}
	if f.quick {
		f.failover, f.rssRuns = 1, 1
		f.duration, f.warmup, f.n = 1500*time.Millisecond, 500*time.Millisecond, 20000
	}
	libs = strings.Split(f.only, ",")
	printMachine()
	rows := selectRows(buildRows(f), f.rows)
	results := runAll(f, rows)
	report(os.Stdout, rows, results)
}

func buildRows(f flags) []row {
	dur := []string{"-duration", f.duration.String(), "-warmup", f.warmup.String()}
	tp := func(group string, durable bool, p, size int) row {
		prefix := map[bool]string{true: "fsync", false: "mem"}[durable]
		name := fmt.Sprintf("%s-p%d-%s", prefix, p, sizeName(size))
		args := append([]string{"-mode", "throughput", "-durable=" + strconv.FormatBool(durable),
			"-proposers", strconv.Itoa(p), "-payload", strconv.Itoa(size)}, dur...)
		return row{group: group, name: name, args: args}
	}
	var rows []row
	if f.quick {
		rows = []row{tp("fsync", true, 1, 128), tp("fsync", true, 16, 128), tp("fsync", true, 256, 4096),
			tp("memory-storage", false, 16, 128)}
	} else {
		for _, durable := range []bool{true, false} {
			group := map[bool]string{true: "fsync", false: "memory-storage"}[durable]
			for _, size := range []int{128, 4096} {
				for _, p := range []int{1, 16, 256} {
					rows = append(rows, tp(group, durable, p, size))
				}
			}
		}
	}
	rows = append(rows, row{group: "failover", name: "failover", args: []string{"-mode", "failover"}},
		row{group: "rss", name: "rss", args: []string{"-mode", "memory", "-n", strconv.Itoa(f.n), "-proposers", strconv.Itoa(f.rssProps)}})
	return rows
}

// selectRows keeps the rows named in names (comma-separated), all if empty.
func selectRows(rows []row, names string) []row {
	if names == "" {
		return rows
	}
	want := map[string]bool{}
	for _, n := range strings.Split(names, ",") {
		want[n] = true
	}
	var out []row
	for _, r := range rows {
		if want[r.name] {
			out = append(out, r)
		}
	}
	return out
}

func sizeName(n int) string {
	if n%1024 == 0 {
		return strconv.Itoa(n/1024) + "KiB"
	}
	return strconv.Itoa(n) + "B"
}

// runAll runs every row for every library, round after round; within a
// round the libraries' order rotates. The memory row, the longest (1M
// proposals per library in a full run), runs in the first f.rssRuns rounds.
func runAll(f flags, rows []row) map[string]map[string][]shared.Result {
	out := map[string]map[string][]shared.Result{}
	seq := 0
	for r := 0; r < f.rounds; r++ {
		for _, rw := range rows {
			if rw.group == "rss" && r >= f.rssRuns {
				continue
			}
			if out[rw.name] == nil {
				out[rw.name] = map[string][]shared.Result{}
			}
			reps := 1
			if rw.group == "failover" {
				reps = f.failover
			}
			for k := 0; k < len(libs)*reps; k++ {
				lib := libs[(k+r)%len(libs)]
				seq++
				res, err := runOne(f, lib, rw, runPort(f.portBase, seq))
				if err != nil {
					fmt.Fprintf(os.Stderr, "round %d %s %s: %v\n", r+1, rw.name, lib, err)
					continue
				}
				out[rw.name][lib] = append(out[rw.name][lib], res)
				fmt.Fprintf(os.Stderr, "round %d %-16s %-9s %s\n", r+1, rw.name, lib, brief(res))
			}
		}
	}
	return out
}

func brief(r shared.Result) string {
	switch r.Mode {
	case "failover":
		return fmt.Sprintf("%.0f ms", r.FailoverMs)
	case "memory":
		return fmt.Sprintf("RSS %.1f MiB", r.RSSMiB)
	}
	return fmt.Sprintf("%.0f/s mean %.2f p50 %.2f p99 %.2f p99.9 %.2f ms; per commit: cpu %.1f us, runq %.1f us, vcsw %.2f, ivcsw %.2f, r/w calls %.2f, alloc %.0f B (%.1f objs); %d GCs",
		r.PerSec, r.MeanMs, r.P50Ms, r.P99Ms, r.P999Ms, r.CPUUsPerCommit, r.RunqUsPerCommit,
		r.VolCSPerCommit, r.InvolCSPerCommit, r.RWCallsPerCommit, r.AllocBytesPerCommit, r.AllocsPerCommit, r.GCs)
}

func runOne(f flags, lib string, rw row, port int) (shared.Result, error) {
	limit := 10 * time.Minute
	if rw.group == "rss" {
		limit = 40 * time.Minute // 1M proposals at a few thousand a second
	}
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	args := append([]string{"-port", strconv.Itoa(port)}, rw.args...)
	cmd := exec.CommandContext(ctx, filepath.Join(f.bin, "bench-"+lib), args...)
	if f.dataDir != "" {
		cmd.Env = append(os.Environ(), "TMPDIR="+f.dataDir)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return shared.Result{}, fmt.Errorf("%v: %s", err, lastLines(stderr.String(), 5))
	}
	res, err := parseResult(&stdout)
	if err != nil {
		return res, fmt.Errorf("%v: %s", err, lastLines(stderr.String(), 5))
	}
	return res, nil
}

// parseResult reads a binary's output up to its RESULT line.
func parseResult(r io.Reader) (shared.Result, error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if line, ok := strings.CutPrefix(sc.Text(), "RESULT "); ok {
			var res shared.Result
			err := json.Unmarshal([]byte(line), &res)
			return res, err
		}
	}
	return shared.Result{}, errors.New("no RESULT line")
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

func printMachine() {
	fmt.Println("== machine")
	model := "unknown"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "model name") {
				model = strings.TrimSpace(l[strings.Index(l, ":")+1:])
				break
			}
		}
	}
	kernel, _ := exec.Command("uname", "-sr").Output()
	fs, _ := exec.Command("df", "-T", os.TempDir()).Output()
	fsType := "?"
	if lines := strings.Split(strings.TrimSpace(string(fs)), "\n"); len(lines) > 1 {
		if fields := strings.Fields(lines[1]); len(fields) > 1 {
			fsType = fields[1]
		}
	}
	fmt.Printf("cpu: %s, %d cores; kernel: %s; data fs: %s; %s; %s\n", model, runtime.NumCPU(),
		strings.TrimSpace(string(kernel)), fsType, runtime.Version(), time.Now().UTC().Format(time.RFC3339))
}
