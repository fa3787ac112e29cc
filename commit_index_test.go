package raft

import (
	"math/rand"
	"testing"

	"github.com/raftkit/raft/quorum"
	"github.com/raftkit/raft/tracker"
)

// TestCommittedIndexMatchesTracker drives random changes of the voter sets
// (in place, swapped for same-size sets, replaced, made joint, emptied,
// grown past the stack buffer), of progress (members without progress,
// progress of non-voters) and of Match, and checks after each that the
// cached-order computation agrees with the tracker's.
func TestCommittedIndexMatchesTracker(t *testing.T) {
	rng := rand.New(rand.NewSource(11))
	r := &raft{trk: tracker.MakeProgressTracker(1, 0)}
	for step := 0; step < 20000; step++ {
		id := uint64(1 + rng.Intn(12))
		switch op := rng.Intn(10); {
		case op < 2:
			r.trk.Voters[0][id] = struct{}{}
		case op < 3:
			delete(r.trk.Voters[0], id)
		case op < 4: // same size, other voters
			for old := range r.trk.Voters[0] {
				if _, taken := r.trk.Voters[0][id]; !taken {
					delete(r.trk.Voters[0], old)
					r.trk.Voters[0][id] = struct{}{}
				}
				break
			}
		case op < 5: // a new set, as a configuration change installs
			fresh := quorum.MajorityConfig{}
			for k := range r.trk.Voters[0] {
				if rng.Intn(3) != 0 {
					fresh[k] = struct{}{}
				}
			}
			r.trk.Voters[0] = fresh
		case op < 6: // enter or leave a joint configuration
			if len(r.trk.Voters[1]) == 0 {
				r.trk.Voters[1] = quorum.MajorityConfig{id: {}}
			} else {
				r.trk.Voters[1] = nil
			}
		case op < 7:
			delete(r.trk.Progress, id)
		default:
			pr := r.trk.Progress[id]
			if pr == nil {
				pr = &tracker.Progress{}
				r.trk.Progress[id] = pr
			}
			pr.Match = uint64(rng.Intn(20))
		}
		if want, got := r.trk.Committed(), r.committedIndex(); got != want {
			t.Fatalf("step %d: committedIndex %d, tracker %d (voters %v, progress %v)",
				step, got, want, r.trk.Voters, r.trk.Progress)
		}
	}
}

// TestCommittedIndexDoesNotAllocate: the leader computes it on every
// acknowledgement.
func TestCommittedIndexDoesNotAllocate(t *testing.T) {
	r := &raft{trk: tracker.MakeProgressTracker(1, 0)}
	for _, id := range []uint64{5, 3, 1} {
		r.trk.Voters[0][id] = struct{}{}
		r.trk.Progress[id] = &tracker.Progress{Match: id}
	}
	if got := r.committedIndex(); got != 3 {
		t.Fatalf("committed %d, want 3", got)
	}
	if n := testing.AllocsPerRun(100, func() { r.committedIndex() }); n != 0 {
		t.Fatalf("%v allocations per call", n)
	}
}
