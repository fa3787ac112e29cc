package raft

import (
	"math/rand"
	"slices"
	"testing"

	"github.com/raftkit/raft/tracker"
)

// TestVisitPeersFollowsProgressChanges checks that visitPeers' cached order
// never outlives the set it was built for: trk.Progress is an exported map
// that confchange replaces and anyone may change between visits (swapping
// one ID for another keeps the size). Every visit must see exactly the
// current IDs, sorted, each with its own Progress, as trk.Visit does.
func TestVisitPeersFollowsProgressChanges(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	r := &raft{trk: tracker.MakeProgressTracker(1, 0)}
	for step := 0; step < 5000; step++ {
		id := uint64(1 + rng.Intn(12))
		switch op := rng.Intn(6); {
		case op < 2:
			r.trk.Progress[id] = &tracker.Progress{}
		case op < 3:
			delete(r.trk.Progress, id)
		case op < 4: // swap: same size, other members
			for old := range r.trk.Progress {
				if _, taken := r.trk.Progress[id]; !taken {
					delete(r.trk.Progress, old)
					r.trk.Progress[id] = &tracker.Progress{}
				}
				break
			}
		case op < 5: // a new map, as a configuration change installs
			fresh := tracker.ProgressMap{}
			for k, v := range r.trk.Progress {
				if rng.Intn(3) != 0 {
					fresh[k] = v
				}
			}
			r.trk.Progress = fresh
		}
		type visit struct {
			id uint64
			pr *tracker.Progress
		}
		var want, got []visit
		r.trk.Visit(func(id uint64, pr *tracker.Progress) { want = append(want, visit{id, pr}) })
		r.visitPeers(func(id uint64, pr *tracker.Progress) { got = append(got, visit{id, pr}) })
		if !slices.Equal(got, want) {
			t.Fatalf("step %d: visitPeers saw %v, trk.Visit %v", step, got, want)
		}
	}
}

// TestVisitPeersDoesNotAllocate guards the point of the cache: a leader's
// broadcast over a small cluster visits its members without allocating.
func TestVisitPeersDoesNotAllocate(t *testing.T) {
	r := &raft{trk: tracker.MakeProgressTracker(1, 0)}
	for _, id := range []uint64{5, 3, 1, 9, 7} {
		r.trk.Progress[id] = &tracker.Progress{}
	}
	var sum uint64
	visit := func(id uint64, _ *tracker.Progress) { sum += id }
	r.visitPeers(visit) // builds the order
	if n := testing.AllocsPerRun(100, func() { r.visitPeers(visit) }); n != 0 {
		t.Fatalf("%v allocations per visit of 5 members", n)
	}
}
