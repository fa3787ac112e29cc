package sim

import (
	"errors"
	"flag"
	"fmt"
	"sort"
	"strings"
	"testing"
)

var (
	flagSeed  = flag.Int64("sim.seed", -1, "replay this one seed (with -sim.v to print its trace)")
	flagSeeds = flag.Int("sim.seeds", 0, "number of seeds to run (default: a CI-sized count)")
	flagFirst = flag.Int64("sim.first", 1, "first seed of a multi-seed run")
	flagSteps = flag.Int("sim.steps", 0, "steps of the faulty phase per seed (default 2000)")
	flagSoak  = flag.Bool("sim.soak", false, "soak: run 5000 seeds of 5000 steps")
	flagV     = flag.Bool("sim.v", false, "print every event of the trace")
	flagWork  = flag.String("sim.workload", "kv", "workload: kv (the built-in key-value store) or counter (workload_test.go)")
	flagReads = flag.String("sim.reads", "mixed", "read mode: safe, lease, or mixed (drawn per seed)")
	flagLock  = flag.Bool("sim.lockstep", false, "tick every node at once at one rate (replays runs recorded before tick skew)")
	flagFast  = flag.Bool("sim.fastfailover", false, "run every seed with RawNode.SetFastFailover (default: drawn per seed)")
)

// TestWorkloads are the workloads -sim.workload can name besides "kv".
// The external test package registers its counter here (workload_test.go),
// so that the counter keeps using the exported API only.
var TestWorkloads = map[string]Workload{}

// flagOptions turns the -sim.workload, -sim.reads, -sim.fastfailover and
// -sim.lockstep flags
// into Options, and a replay hint naming them.
func flagOptions(t *testing.T) (Options, string) {
	var opts Options
	var hint []string
	switch *flagWork {
	case "kv", "":
	default:
		w, ok := TestWorkloads[*flagWork]
		if !ok {
			t.Fatalf("-sim.workload=%s: want kv or one of %v", *flagWork, workloadNames())
		}
		opts.Workload = w
		hint = append(hint, "-sim.workload="+*flagWork)
	}
	switch *flagReads {
	case "mixed", "":
	case "safe":
		opts.Reads = ReadsSafe
	case "lease":
		opts.Reads = ReadsLease
	default:
		t.Fatalf("-sim.reads=%s: want safe, lease or mixed", *flagReads)
	}
	if opts.Reads != ReadsMixed {
		hint = append(hint, "-sim.reads="+*flagReads)
	}
	if *flagFast {
		opts.FastFailover = 1
		hint = append(hint, "-sim.fastfailover")
	}
	if *flagLock {
		opts.LockStepTicks = true
		hint = append(hint, "-sim.lockstep")
	}
	return opts, strings.Join(hint, " ")
}

func workloadNames() []string {
	var ks []string
	for k := range TestWorkloads {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// ciSeeds is the number of seeds a plain `go test` runs: enough to cover
// every cluster shape and mode, small enough for CI (fewer under -race,
// which runs about ten times slower).
func ciSeeds() int {
	if raceEnabled {
		return 20
	}
	return 200
}

// TestSimulation runs the simulator over many seeds and prints the
// figures as one "summary:" line of key=value pairs (soak.sh sums them
// over shards). A failure prints the seed, the step, the invariant and the
// recent events, and shrinks the set of fault kinds needed. Seeds
// -sim.first to -sim.first+N-1 run, so shards of a soak take disjoint
// ranges.
func TestSimulation(t *testing.T) {
	base, hint := flagOptions(t)
	seeds, first, steps := ciSeeds(), *flagFirst, *flagSteps
	if testing.Short() {
		seeds = 2
	}
	if *flagSoak {
		seeds, steps = 5000, 5000
	}
	if *flagSeeds > 0 {
		seeds = *flagSeeds
	}
	if *flagSeed >= 0 {
		seeds, first = 1, *flagSeed
	}
	var total Stats
	var failures []string
	for seed := first; seed < first+int64(seeds); seed++ {
		opts := base
		opts.Seed, opts.Steps = seed, steps
		if *flagV {
			opts.Trace = func(step int, e string) { t.Logf("%d: %s", step, e) }
		}
		st, err := Run(opts)
		total.Add(st)
		if err != nil {
			var v *Violation
			if !errors.As(err, &v) {
				t.Fatalf("seed %d: %v", seed, err)
			}
			shrunk := "(not shrunk: only the first few failures are)"
			if len(failures) < 3 {
				shrunk = shrink(opts, v)
			}
			failures = append(failures, fmt.Sprintf("%v\nwith the flags: go test ./rafttest/sim -run 'TestSimulation$' -sim.seed=%d -sim.steps=%d %s -sim.v -v\nshrunk: %s",
				v, seed, opts.Steps, hint, shrunk))
		}
	}
	t.Logf("summary: seeds=%d steps=%d ticks=%d checked=%d reads=%d writes=%d abandoned=%d lease-reads=%d round-reads=%d unreachable-reports=%d crashes=%d torn-writes=%d conf-changes=%d transfers=%d compactions=%d leaders=%d violations=%d",
		seeds, total.Steps, total.Ticks, total.Checked, total.Reads, total.Writes, total.Unanswered, total.LeaseReads, total.RoundReads,
		total.UnreachableReports, total.Crashes, total.TornWrites, total.ConfChanges, total.Transfers, total.Compactions, total.Leaders, len(failures))
	t.Logf("faults: %s", fmtFaults(total.Faults))
	for _, f := range failures {
		t.Error(f)
	}
	// A run that observed nothing proves nothing (a failing replay is
	// reported as what it is).
	if len(failures) > 0 {
		return
	}
	if total.Steps == 0 || total.Checked == 0 || total.Writes == 0 {
		t.Errorf("the run did no work: %d steps, %d operations checked, %d answered writes", total.Steps, total.Checked, total.Writes)
	}
	if base.Reads == ReadsLease && total.LeaseReads == 0 {
		t.Errorf("-sim.reads=lease, yet no read was answered from a lease")
	}
}

func fmtFaults(m map[string]int) string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	var b strings.Builder
	for i, k := range ks {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s=%d", k, m[k])
	}
	return b.String()
}

// shrink finds a smaller schedule that still fails the same invariant:
// the fewest steps (the violation's own step), then as few fault kinds
// as possible, disabling one kind at a time.
func shrink(opts Options, v *Violation) string {
	opts.Trace = nil
	opts.Disable = map[string]bool{}
	fails := func(o Options) bool {
		_, err := Run(o)
		var w *Violation
		return errors.As(err, &w) && w.Invariant == v.Invariant
	}
	if v.Step < opts.Steps || opts.Steps == 0 {
		opts.Steps = v.Step
	}
	for _, k := range FaultKinds {
		opts.Disable[k] = true
		if !fails(opts) {
			opts.Disable[k] = false
		}
	}
	var needed []string
	for _, k := range FaultKinds {
		if !opts.Disable[k] {
			needed = append(needed, k)
		}
	}
	return fmt.Sprintf("fails within %d steps with only these fault kinds enabled: %v", opts.Steps, needed)
}

// TestTraceDeterministic runs seeds twice and compares the trace hashes:
// every choice comes from the seed, so the traces must be identical.
func TestTraceDeterministic(t *testing.T) {
	for seed := int64(100); seed < 103; seed++ {
		a, errA := Run(Options{Seed: seed, Steps: 600})
		b, errB := Run(Options{Seed: seed, Steps: 600})
		if a.TraceHash != b.TraceHash || fmt.Sprint(errA) != fmt.Sprint(errB) {
			t.Fatalf("seed %d: traces differ: %x vs %x", seed, a.TraceHash, b.TraceHash)
		}
		c, _ := Run(Options{Seed: seed + 1000, Steps: 600})
		if c.TraceHash == a.TraceHash {
			t.Fatalf("seeds %d and %d gave the same trace hash %x", seed, seed+1000, a.TraceHash)
		}
	}
}

// TestKnownSeeds replays the seeds on which issue 12's two hazards were
// found, as they were recorded (lock-step ticks, 5000 steps): seed 1143,
// a split brain from apply-time configuration, and counter seeds 139 and
// 302, stale lease reads. They fail on etcd/raft's rules and pass with
// raftkit's fixes (startup commit raising, the new lease rule).
func TestKnownSeeds(t *testing.T) {
	if testing.Short() {
		t.Skip("5000 steps per seed")
	}
	for _, tc := range []struct {
		seed     int64
		workload string
	}{{1143, "kv"}, {139, "counter"}, {302, "counter"}} {
		opts := Options{Seed: tc.seed, Steps: 5000, LockStepTicks: true, FastFailover: -1}
		if tc.workload != "kv" {
			opts.Workload = TestWorkloads[tc.workload]
		}
		st, err := Run(opts)
		if err != nil {
			t.Errorf("%s seed %d: %v", tc.workload, tc.seed, err)
			continue
		}
		if st.Checked == 0 {
			t.Errorf("%s seed %d checked no operation", tc.workload, tc.seed)
		}
	}
}

// TestFastFailoverWithLeases runs seeds with RawNode.SetFastFailover on every
// node and lease reads: followers told of a lost leader campaign early,
// and every invariant, lease safety among them, must still hold.
func TestFastFailoverWithLeases(t *testing.T) {
	seeds := ciSeeds() / 4
	if testing.Short() {
		seeds = 2
	}
	var total Stats
	for seed := int64(1); seed <= int64(seeds); seed++ {
		st, err := Run(Options{Seed: seed, FastFailover: 1, Reads: ReadsLease})
		if err != nil {
			t.Fatalf("go test ./rafttest/sim -run 'TestSimulation$' -sim.seed=%d -sim.fastfailover -sim.reads=lease: %v", seed, err)
		}
		if !st.FastFailover {
			t.Fatalf("seed %d ran without FastFailover", seed)
		}
		total.Add(st)
	}
	t.Logf("unreachable-reports=%d crashes=%d leaders=%d lease-reads=%d checked=%d",
		total.UnreachableReports, total.Crashes, total.Leaders, total.LeaseReads, total.Checked)
	if total.UnreachableReports == 0 || total.LeaseReads == 0 || total.Checked == 0 {
		t.Errorf("the runs exercised nothing: %+v", total)
	}
}

// TestFastFailoverOption checks that Options.FastFailover fixes the option
// and leaves the schedule's draws where they were: a seed's trace with the
// option forced to what the seed draws is the trace of the draw.
func TestFastFailoverOption(t *testing.T) {
	on, off := 0, 0
	for seed := int64(1); seed <= 8; seed++ {
		drawn, err := Run(Options{Seed: seed, Steps: 300})
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		force := -1
		if drawn.FastFailover {
			force, on = 1, on+1
		} else {
			off++
		}
		forced, err := Run(Options{Seed: seed, Steps: 300, FastFailover: force})
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		if forced.TraceHash != drawn.TraceHash {
			t.Errorf("seed %d: forcing the drawn FastFailover=%v changed the trace", seed, drawn.FastFailover)
		}
		if !drawn.FastFailover && drawn.UnreachableReports != 0 {
			t.Errorf("seed %d: %d reports without FastFailover", seed, drawn.UnreachableReports)
		}
	}
	if on == 0 || off == 0 {
		t.Errorf("8 seeds drew FastFailover on %d times and off %d times", on, off)
	}
}
