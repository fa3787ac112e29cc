package sim_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand"
	"testing"

	"github.com/anishathalye/porcupine"

	"github.com/raftkit/raft/rafttest/sim"
)

// This file plugs a state machine of its own into the simulator through
// the exported API only: a replicated counter. Clients add to it (the
// answer is the total after the addition) and read it.

// The counter can also run under TestSimulation: -sim.workload=counter.
func init() { sim.TestWorkloads["counter"] = counterWorkload{} }

// add is the input of a write; read the input of a read.
type (
	add  struct{ Delta int64 }
	read struct{}
)

func (a add) String() string { return fmt.Sprintf("add %d", a.Delta) }
func (read) String() string  { return "read" }

// bug selects a planted defect of the counter, to show that the simulator
// catches it.
type bug int

const (
	noBug bug = iota
	// staleReads answers reads from the total before the latest write.
	staleReads
	// lossyRestore forgets the snapshot's total when restoring.
	lossyRestore
)

type counter struct {
	total, before int64
	bug           bug
}

func (c *counter) Apply(input interface{}) interface{} {
	c.before = c.total
	c.total += input.(add).Delta
	return c.total
}

func (c *counter) Read(interface{}) interface{} {
	if c.bug == staleReads {
		return c.before
	}
	return c.total
}

func (c *counter) Snapshot() []byte {
	return binary.AppendVarint(binary.AppendVarint(nil, c.total), c.before)
}

func (c *counter) Restore(data []byte) error {
	total, k := binary.Varint(data)
	if k <= 0 {
		return errors.New("counter snapshot: bad total")
	}
	before, k2 := binary.Varint(data[k:])
	if k2 <= 0 {
		return errors.New("counter snapshot: bad previous total")
	}
	c.total, c.before = total, before
	if c.bug == lossyRestore {
		c.total = 0
	}
	return nil
}

// counterWorkload issues reads one time in three and small additions
// otherwise; proposals are three varints: client, seq, delta.
type counterWorkload struct{ bug bug }

func (w counterWorkload) NewStateMachine() sim.StateMachine { return &counter{bug: w.bug} }

func (counterWorkload) Next(rng *rand.Rand, c sim.ClientState) sim.Op {
	if rng.Intn(3) == 0 {
		return sim.Op{Input: read{}, Read: true}
	}
	return sim.Op{Input: add{Delta: 1 + rng.Int63n(9)}}
}

func (counterWorkload) Encode(c sim.Call) []byte {
	b := binary.AppendUvarint(nil, uint64(c.Client))
	b = binary.AppendUvarint(b, c.Seq)
	return binary.AppendVarint(b, c.Input.(add).Delta)
}

func (counterWorkload) Decode(data []byte) (sim.Call, error) {
	client, k1 := binary.Uvarint(data)
	if k1 <= 0 {
		return sim.Call{}, errors.New("counter proposal: bad client")
	}
	seq, k2 := binary.Uvarint(data[k1:])
	if k2 <= 0 {
		return sim.Call{}, errors.New("counter proposal: bad seq")
	}
	delta, k3 := binary.Varint(data[k1+k2:])
	if k3 <= 0 || k1+k2+k3 != len(data) {
		return sim.Call{}, errors.New("counter proposal: bad delta")
	}
	return sim.Call{Client: int(client), Seq: seq, Input: add{Delta: delta}}, nil
}

func (counterWorkload) LivenessWrite(int64) interface{} { return add{Delta: 1} }

// Model: the state is the total. No partitioning is possible (every
// operation touches the one counter), but the state is one integer, so
// porcupine's search stays small.
func (counterWorkload) Model() porcupine.Model {
	return porcupine.Model{
		Init: func() interface{} { return int64(0) },
		Step: func(state, input, output interface{}) (bool, interface{}) {
			total := state.(int64)
			if a, ok := input.(add); ok {
				total += a.Delta
			}
			return output.(int64) == total, total
		},
		DescribeOperation: func(input, output interface{}) string {
			return fmt.Sprintf("%v -> %v", input, output)
		},
	}
}

// Example_customStateMachine runs a user's state machine (the counter
// above) under the simulator's faults, crashes and checks.
func Example_customStateMachine() {
	violations, checked := 0, 0
	for seed := int64(1); seed <= 3; seed++ {
		st, err := sim.Run(sim.Options{Seed: seed, Workload: counterWorkload{}})
		if err != nil {
			fmt.Println(err) // a *sim.Violation: seed, step, invariant, recent events
			violations++
		}
		checked += st.Checked
	}
	fmt.Println("violations:", violations)
	fmt.Println("operations checked:", checked > 0)
	// Output:
	// violations: 0
	// operations checked: true
}

// TestCounterWorkload runs more seeds of the counter and reports the
// figures.
func TestCounterWorkload(t *testing.T) {
	first, seeds := int64(4), int64(4) // the example runs seeds 1 to 3
	if testing.Short() {
		seeds = 1
	}
	var total sim.Stats
	for seed := first; seed < first+seeds; seed++ {
		st, err := sim.Run(sim.Options{Seed: seed, Workload: counterWorkload{}})
		if err != nil {
			t.Fatal(err)
		}
		total.Add(st)
	}
	if total.Checked == 0 || total.Reads == 0 || total.Writes == 0 || total.Crashes == 0 {
		t.Fatalf("the runs exercised too little: %+v", total)
	}
	t.Logf("seeds=%d steps=%d operations checked=%d (reads=%d writes=%d) crashes=%d compactions=%d",
		seeds, total.Steps, total.Checked, total.Reads, total.Writes, total.Crashes, total.Compactions)
}

// TestBuggyStateMachineCaught plants defects in the counter and expects
// the simulator to catch each within a few seeds, as a violation that
// names the seed to replay.
func TestBuggyStateMachineCaught(t *testing.T) {
	for _, tc := range []struct {
		name string
		bug  bug
		// invariants that may catch it first
		want []string
	}{
		{"stale reads", staleReads, []string{"linearizability"}},
		{"restore drops state", lossyRestore, []string{"linearizability", "state machine safety"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for seed := int64(1); seed <= 10; seed++ {
				_, err := sim.Run(sim.Options{Seed: seed, Workload: counterWorkload{bug: tc.bug}, TraceTail: 5})
				if err == nil {
					continue
				}
				var v *sim.Violation
				if !errors.As(err, &v) {
					t.Fatalf("seed %d: not a violation: %v", seed, err)
				}
				if v.Seed != seed || !contains(tc.want, v.Invariant) {
					t.Fatalf("seed %d: want a violation of %v naming the seed, got:\n%v", seed, tc.want, v)
				}
				t.Logf("caught:\n%v", v)
				return
			}
			t.Fatal("the planted bug went unnoticed for 10 seeds")
		})
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
