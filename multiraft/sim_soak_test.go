package multiraft

import (
	"flag"
	"fmt"
	"math/rand"
	"testing"
)

// Soaking the simulation: TestSimSoak runs seeds whose options are drawn
// from the seed, so that one run mixes what the other simulation tests
// each hold fixed (streams, heartbeats every tick or every other,
// coalesced or separate heartbeats, fast failover, asynchronous saves,
// membership changes, the number of groups). Without flags it runs a
// CI-sized handful; for a soak:
//
//	go test ./multiraft -run TestSimSoak -sim.first 1 -sim.seeds 5000 -timeout 0
//
// A failing seed names itself in its subtest (seed=N) and replays alone
// with -sim.first N -sim.seeds 1.
var (
	flagSimFirst  = flag.Int64("sim.first", 0, "first seed of TestSimSoak (default: a fixed CI range)")
	flagSimSeeds  = flag.Int("sim.seeds", 0, "seeds TestSimSoak runs (default: a CI-sized count)")
	flagSimRounds = flag.Int("sim.rounds", 1500, "tick rounds of each TestSimSoak seed's faulty phase")
)

// soakCISeeds is where the CI-sized soak starts: seeds of their own, not
// those the fixed-option tests run.
const soakCISeeds = 1000

// soakOpts draws seed's options from the seed alone (a generator of its
// own, so that the simulation's draws are those of any run of the seed).
func soakOpts(seed int64, rounds int) simOpts {
	r := rand.New(rand.NewSource(seed*7919 + 17))
	return simOpts{
		seed:               seed,
		hosts:              3,
		groups:             2 + r.Intn(7),
		rounds:             rounds,
		heartbeatTick:      1 + r.Intn(2),
		streams:            r.Intn(2) == 0,
		separateHeartbeats: r.Intn(6) == 0,
		fastFailover:       r.Intn(3) == 0,
		asyncSaves:         r.Intn(4) == 0,
		membership:         r.Intn(3) == 0,
	}
}

func TestSimSoak(t *testing.T) {
	first, seeds := *flagSimFirst, *flagSimSeeds
	if first == 0 {
		first = soakCISeeds
	}
	if seeds == 0 {
		seeds = simSeeds / 2
		if testing.Short() {
			seeds = 1
		}
	}
	for seed := first; seed < first+int64(seeds); seed++ {
		o := soakOpts(seed, *flagSimRounds)
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			t.Parallel() // each simulation is single-threaded and deterministic
			t.Logf("options %+v", o)
			newSim(t, o).run()
		})
	}
}

// The drawn options cover every combination's parts within a few dozen
// seeds, and a seed always draws the same.
func TestSoakOptsCoverEveryOption(t *testing.T) {
	var seen struct{ hb2, streams, separate, fast, async, members, fewGroups, manyGroups bool }
	for seed := int64(1); seed <= 64; seed++ {
		o := soakOpts(seed, 100)
		if o != soakOpts(seed, 100) {
			t.Fatalf("seed %d drew different options twice", seed)
		}
		seen.hb2 = seen.hb2 || o.heartbeatTick == 2
		seen.streams = seen.streams || o.streams
		seen.separate = seen.separate || o.separateHeartbeats
		seen.fast = seen.fast || o.fastFailover
		seen.async = seen.async || o.asyncSaves
		seen.members = seen.members || o.membership
		seen.fewGroups = seen.fewGroups || o.groups == 2
		seen.manyGroups = seen.manyGroups || o.groups == 8
	}
	if !(seen.hb2 && seen.streams && seen.separate && seen.fast && seen.async && seen.members &&
		seen.fewGroups && seen.manyGroups) {
		t.Fatalf("64 seeds missed an option: %+v", seen)
	}
}
