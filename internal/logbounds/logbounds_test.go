package logbounds

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
)

// TestLoadWaitsForWriter stops a writer halfway through publishing (the
// last index moved, its term not yet) and checks that a reader does not
// return until the publication is complete, and then returns the new
// bounds whole. A reader that ignored the version would return the torn
// pair at once.
func TestLoadWaitsForWriter(t *testing.T) {
	var b Bounds
	b.Store(1, 3, 1)
	b.version.Add(1) // the writer begins...
	b.last.Store(4)
	got := make(chan [3]uint64, 1)
	started := make(chan struct{})
	go func() {
		close(started)
		first, last, lastTerm := b.Load()
		got <- [3]uint64{first, last, lastTerm}
	}()
	<-started
	for i := 0; i < 1000; i++ {
		runtime.Gosched() // every chance for the reader to return early
	}
	select {
	case v := <-got:
		t.Fatalf("Load returned %v while a writer was publishing", v)
	default:
	}
	b.lastTerm.Store(2) // ...and ends
	b.version.Add(1)
	if v := <-got; v != [3]uint64{1, 4, 2} {
		t.Fatalf("Load = %v after the publication, want [1 4 2]", v)
	}
}

// TestLoadIsNeverTorn has one writer publish bounds whose values tie
// together (last = first+10, lastTerm = 7*last) while readers load them;
// every answer must tie together too. The writer goes on until the readers
// have seen the bounds change under them.
func TestLoadIsNeverTorn(t *testing.T) {
	var b Bounds
	b.Store(1, 11, 77)
	var reads, changes atomic.Int64
	var done atomic.Bool
	var wg sync.WaitGroup
	for r := 0; r < 2; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			prev := uint64(0)
			for !done.Load() {
				first, last, lastTerm := b.Load()
				reads.Add(1)
				if last != first+10 || lastTerm != 7*last {
					t.Errorf("Load = (%d, %d, %d): torn", first, last, lastTerm)
					return
				}
				if last != prev {
					changes.Add(1)
					prev = last
				}
			}
		}()
	}
	for k := uint64(0); k < 20000 || reads.Load() < 2000 || changes.Load() < 10; k++ {
		first := 1 + k%50
		b.Store(first, first+10, 7*(first+10))
		if t.Failed() {
			break
		}
	}
	done.Store(true)
	wg.Wait()
}

// TestZeroAndStore checks the zero value and that Store replaces every
// bound, including when only some of them change.
func TestZeroAndStore(t *testing.T) {
	var b Bounds
	if f, l, lt := b.Load(); f != 0 || l != 0 || lt != 0 {
		t.Fatalf("zero Bounds load (%d, %d, %d)", f, l, lt)
	}
	for _, want := range [][3]uint64{{1, 0, 0}, {1, 5, 2}, {1, 6, 2}, {4, 6, 3}, {7, 6, 3}} {
		b.Store(want[0], want[1], want[2])
		if f, l, lt := b.Load(); [3]uint64{f, l, lt} != want {
			t.Fatalf("after Store%v, Load = (%d, %d, %d)", want, f, l, lt)
		}
	}
}
