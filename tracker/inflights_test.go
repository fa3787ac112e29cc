package tracker_test

import (
	"math/rand"
	"strconv"
	"testing"

	"github.com/raftkit/raft/tracker"
)

// fill adds a message per (index, bytes) pair, failing if the window is full
// before one of them.
func fill(t *testing.T, in *tracker.Inflights, msgs ...[2]uint64) {
	t.Helper()
	for _, m := range msgs {
		if in.Full() {
			t.Fatalf("window full before Add(%d, %d)", m[0], m[1])
		}
		in.Add(m[0], m[1])
	}
}

func TestInflightsCountLimit(t *testing.T) {
	in := tracker.NewInflights(3, 0)
	if in.Full() || in.Count() != 0 {
		t.Fatalf("new window: full=%v count=%d", in.Full(), in.Count())
	}
	fill(t, in, [2]uint64{10, 1 << 40}, [2]uint64{12, 1 << 40})
	if in.Full() {
		t.Fatal("2 of 3 messages with no byte limit must not be full")
	}
	fill(t, in, [2]uint64{13, 0})
	if !in.Full() || in.Count() != 3 {
		t.Fatalf("3 of 3: full=%v count=%d", in.Full(), in.Count())
	}
	in.FreeLE(11) // frees only the message ending at 10
	if in.Full() || in.Count() != 2 {
		t.Fatalf("after FreeLE(11): full=%v count=%d", in.Full(), in.Count())
	}
}

func TestInflightsByteLimitIsSoft(t *testing.T) {
	for _, tc := range []struct {
		name     string
		sizes    []uint64
		wantFull bool
	}{
		{"below", []uint64{40, 59}, false},
		{"exactly at", []uint64{40, 60}, true},
		{"one message overshooting", []uint64{99, 500}, true},
		{"single huge message", []uint64{1000}, true},
		{"zero-size messages never reach it", []uint64{0, 0, 0, 0}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := tracker.NewInflights(10, 100)
			for i, sz := range tc.sizes {
				fill(t, in, [2]uint64{uint64(i + 1), sz})
			}
			if in.Full() != tc.wantFull {
				t.Fatalf("Full() = %v, want %v", in.Full(), tc.wantFull)
			}
		})
	}
}

func TestInflightsByteLimitReleasedByFreeLE(t *testing.T) {
	in := tracker.NewInflights(10, 100)
	fill(t, in, [2]uint64{5, 30}, [2]uint64{6, 30}, [2]uint64{9, 50})
	if !in.Full() {
		t.Fatal("110 of 100 bytes must be full")
	}
	in.FreeLE(5)
	if in.Full() {
		t.Fatal("80 of 100 bytes after FreeLE(5) must not be full")
	}
	fill(t, in, [2]uint64{10, 20})
	if !in.Full() || in.Count() != 3 {
		t.Fatalf("back at 100 bytes: full=%v count=%d", in.Full(), in.Count())
	}
}

func TestInflightsFreeLE(t *testing.T) {
	// Window holding messages ending at 3, 5, 5 (an empty append repeats an
	// index), 8 and 20.
	mk := func() *tracker.Inflights {
		in := tracker.NewInflights(8, 0)
		for _, idx := range []uint64{3, 5, 5, 8, 20} {
			in.Add(idx, 1)
		}
		return in
	}
	for _, tc := range []struct {
		to   uint64
		want int
	}{
		{0, 5}, {2, 5}, // below the window: nothing freed
		{3, 4}, {4, 4},
		{5, 2}, // both messages ending at 5
		{19, 1},
		{20, 0}, {1 << 62, 0},
	} {
		in := mk()
		in.FreeLE(tc.to)
		if got := in.Count(); got != tc.want {
			t.Errorf("FreeLE(%d): count %d, want %d", tc.to, got, tc.want)
		}
	}

	// Freeing is idempotent and never moves backwards.
	in := mk()
	in.FreeLE(8)
	in.FreeLE(8)
	in.FreeLE(4)
	if in.Count() != 1 {
		t.Fatalf("count %d after repeated and stale FreeLE, want 1", in.Count())
	}
	// An empty window ignores FreeLE.
	empty := tracker.NewInflights(4, 0)
	empty.FreeLE(100)
	if empty.Count() != 0 || empty.Full() {
		t.Fatal("FreeLE on an empty window changed it")
	}
}

// TestInflightsWraparound drives a small window around its ring many times,
// checking which messages remain after each partial release.
func TestInflightsWraparound(t *testing.T) {
	const size = 5
	in := tracker.NewInflights(size, 0)
	next := uint64(100)
	var live []uint64 // indexes in flight, oldest first
	for round := 0; round < 40; round++ {
		for !in.Full() {
			in.Add(next, 7)
			live = append(live, next)
			next++
		}
		if len(live) != size {
			t.Fatalf("round %d: full with %d messages", round, len(live))
		}
		// Release between 1 and 3 messages, varying with the round so the
		// oldest message sits at every ring position over time.
		k := 1 + round%3
		in.FreeLE(live[k-1])
		live = live[k:]
		if in.Count() != len(live) {
			t.Fatalf("round %d: count %d, want %d", round, in.Count(), len(live))
		}
		// The oldest remaining message must still be there: freeing just
		// below it changes nothing, freeing it removes exactly one.
		in.FreeLE(live[0] - 1)
		if in.Count() != len(live) {
			t.Fatalf("round %d: FreeLE below oldest freed something", round)
		}
	}
}

func TestInflightsClone(t *testing.T) {
	orig := tracker.NewInflights(4, 50)
	fill(t, orig, [2]uint64{1, 10}, [2]uint64{2, 10}, [2]uint64{3, 10})
	c := orig.Clone()
	if c.Count() != 3 || c.Full() {
		t.Fatalf("clone: count %d full %v", c.Count(), c.Full())
	}
	// Changes to either side stay on that side.
	c.FreeLE(2)
	c.Add(4, 10)
	c.Add(5, 30)
	if orig.Count() != 3 || orig.Full() {
		t.Fatalf("original changed by clone: count %d full %v", orig.Count(), orig.Full())
	}
	orig.FreeLE(3)
	if c.Count() != 3 || !c.Full() {
		t.Fatalf("clone changed by original: count %d full %v", c.Count(), c.Full())
	}
	// Writing into the original's ring must not show in the clone.
	orig.Add(6, 0)
	orig.Add(7, 0)
	c.FreeLE(4)
	if c.Count() != 1 {
		t.Fatalf("clone count %d after FreeLE(4), want 1 (message 5)", c.Count())
	}
	// A never-used window clones too.
	if e := tracker.NewInflights(2, 0).Clone(); e.Count() != 0 || e.Full() {
		t.Fatal("clone of empty window not empty")
	}
}

func TestInflightsAddWhenFullPanics(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   *tracker.Inflights
	}{
		{"by count", func() *tracker.Inflights { in := tracker.NewInflights(1, 0); in.Add(1, 0); return in }()},
		{"by bytes", func() *tracker.Inflights { in := tracker.NewInflights(9, 5); in.Add(1, 5); return in }()},
		{"zero size", tracker.NewInflights(0, 0)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatal("Add on a full window did not panic")
				}
			}()
			tc.in.Add(2, 1)
		})
	}
}

// TestInflightsMatchesModel compares random operation sequences against a
// plain slice, with seeded randomness so that failures reproduce.
func TestInflightsMatchesModel(t *testing.T) {
	rng := rand.New(rand.NewSource(42))
	type msg struct{ idx, bytes uint64 }
	for iter := 0; iter < 300; iter++ {
		size := 1 + rng.Intn(12)
		maxBytes := uint64(0)
		if rng.Intn(2) == 0 {
			maxBytes = uint64(1 + rng.Intn(200))
		}
		in := tracker.NewInflights(size, maxBytes)
		var model []msg
		idx := uint64(rng.Intn(5))
		modelFull := func() bool {
			var total uint64
			for _, m := range model {
				total += m.bytes
			}
			return len(model) == size || (maxBytes != 0 && total >= maxBytes)
		}
		for step := 0; step < 200; step++ {
			if got, want := in.Full(), modelFull(); got != want {
				t.Fatalf("iter %d step %d: Full() = %v, model %v (model %v)", iter, step, got, want, model)
			}
			if rng.Intn(3) > 0 && !modelFull() {
				idx += uint64(rng.Intn(3)) // repeats allowed: empty appends
				m := msg{idx, uint64(rng.Intn(40))}
				in.Add(m.idx, m.bytes)
				model = append(model, m)
			} else {
				to := idx - uint64(rng.Intn(6))
				if to > idx { // wrapped below zero
					to = 0
				}
				in.FreeLE(to)
				k := 0
				for k < len(model) && model[k].idx <= to {
					k++
				}
				model = model[k:]
			}
			if in.Count() != len(model) {
				t.Fatalf("iter %d step %d: Count() = %d, model %d", iter, step, in.Count(), len(model))
			}
		}
	}
}

// TestInflightsSteadyStateDoesNotAllocate checks that once the ring has grown
// to the window size, sending and acknowledging reuse it.
func TestInflightsSteadyStateDoesNotAllocate(t *testing.T) {
	in := tracker.NewInflights(64, 1<<20)
	var idx uint64
	cycle := func() {
		for !in.Full() {
			idx++
			in.Add(idx, 100)
		}
		in.FreeLE(idx - 10) // leave some in flight so the start moves around
	}
	for i := 0; i < 4; i++ {
		cycle() // warm up: grow the ring to full size
	}
	if n := testing.AllocsPerRun(200, cycle); n != 0 {
		t.Fatalf("%v allocations per Add/FreeLE cycle after warm-up, want 0", n)
	}
	one := func() {
		idx++
		in.Add(idx, 100)
		in.FreeLE(idx)
	}
	if n := testing.AllocsPerRun(1000, one); n != 0 {
		t.Fatalf("%v allocations per single Add+FreeLE, want 0", n)
	}
}

// BenchmarkInflights measures the leader's per-message bookkeeping: one Add
// per MsgApp, one FreeLE per acknowledgement, with a window that stays about
// half full.
func BenchmarkInflights(b *testing.B) {
	for _, size := range []int{16, 256} {
		b.Run("size="+strconv.Itoa(size), func(b *testing.B) {
			in := tracker.NewInflights(size, 0)
			var idx uint64
			lag := uint64(size / 2)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				idx++
				in.Add(idx, 1024)
				if idx > lag {
					in.FreeLE(idx - lag)
				}
			}
		})
	}
}
