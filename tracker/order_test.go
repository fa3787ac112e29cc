package tracker_test

import (
	"math/rand"
	"slices"
	"strconv"
	"testing"

	pb "github.com/raftkit/raft/raftpb"
	"github.com/raftkit/raft/tracker"
)

// randomTracker returns a tracker over IDs 1..universe: random incoming and
// (sometimes) outgoing voters and learners, Progress for most members (a
// voter may lack one) and sometimes for a non-member, random Match.
func randomTracker(rng *rand.Rand, universe int) *tracker.ProgressTracker {
	pick := func(p int) []uint64 {
		var ids []uint64
		for id := uint64(1); id <= uint64(universe); id++ {
			if rng.Intn(10) < p {
				ids = append(ids, id)
			}
		}
		return ids
	}
	cs := pb.ConfState{Voters: pick(5)}
	if rng.Intn(2) == 0 {
		cs.VotersOutgoing = pick(4)
	}
	trk := trackerFor(cs)
	for _, id := range pick(2) {
		if _, tracked := trk.Progress[id]; !tracked {
			trk.Progress[id] = &tracker.Progress{IsLearner: true}
		}
	}
	for id, pr := range trk.Progress {
		if rng.Intn(8) == 0 {
			delete(trk.Progress, id)
			continue
		}
		pr.Match = uint64(rng.Intn(20))
	}
	return trk
}

// TestMemberOrderMatchesTracker: for random configurations, including
// joint ones, ones larger than the stack buffer and voters without
// Progress, the member order visits, lists, looks up and commits exactly as
// the tracker's own (map-based) methods do, also after Progress values
// change.
func TestMemberOrderMatchesTracker(t *testing.T) {
	rng := rand.New(rand.NewSource(7))
	for i := 0; i < 3000; i++ {
		universe := 9
		if i%10 == 0 {
			universe = 40 // past commitrule.StackVoters
		}
		trk := randomTracker(rng, universe)
		o := tracker.MakeMemberOrder(trk)
		for round := 0; round < 3; round++ {
			if got, want := o.Committed(), trk.Committed(); got != want {
				t.Fatalf("%s with %v: MemberOrder.Committed() = %d, tracker %d", trk.Config, trk.Progress, got, want)
			}
			var got, want []*tracker.Progress
			var gotIDs, wantIDs []uint64
			o.Visit(func(id uint64, pr *tracker.Progress) { gotIDs, got = append(gotIDs, id), append(got, pr) })
			trk.Visit(func(id uint64, pr *tracker.Progress) { wantIDs, want = append(wantIDs, id), append(want, pr) })
			if !slices.Equal(gotIDs, wantIDs) || !slices.Equal(got, want) {
				t.Fatalf("%s: visited %v, tracker %v", trk.Config, gotIDs, wantIDs)
			}
			if got, want := o.Voters(), trk.VoterNodes(); !slices.Equal(got, want) {
				t.Fatalf("%s: voters %v, tracker %v", trk.Config, got, want)
			}
			for id := uint64(0); id <= uint64(universe)+1; id++ {
				if got, want := o.Progress(id), trk.Progress[id]; got != want {
					t.Fatalf("%s: Progress(%d) = %p, tracker %p", trk.Config, id, got, want)
				}
			}
			for _, pr := range trk.Progress {
				pr.Match = uint64(rng.Intn(20))
			}
		}
	}
}

// TestMemberOrderCommittedDoesNotAllocate: the leader asks on every
// acknowledgement, also in joint configurations.
func TestMemberOrderCommittedDoesNotAllocate(t *testing.T) {
	trk := trackerFor(pb.ConfState{Voters: []uint64{5, 3, 1, 7, 9}, VotersOutgoing: []uint64{1, 3, 4}, Learners: []uint64{11}})
	for id, pr := range trk.Progress {
		pr.Match = 10 + id
	}
	o := tracker.MakeMemberOrder(trk)
	if got, want := o.Committed(), trk.Committed(); got != want {
		t.Fatalf("committed %d, want %d", got, want)
	}
	visit := func(uint64, *tracker.Progress) {}
	if n := testing.AllocsPerRun(100, func() { o.Committed(); o.Visit(visit) }); n != 0 {
		t.Fatalf("%v allocations per Committed and Visit", n)
	}
}

// TestZeroMemberOrder: before any configuration is installed there is
// nobody to visit, and no voter constrains the commit index (as with the
// tracker's empty configuration).
func TestZeroMemberOrder(t *testing.T) {
	var o tracker.MemberOrder
	o.Visit(func(id uint64, _ *tracker.Progress) { t.Fatalf("visited %d", id) })
	empty := tracker.MakeProgressTracker(1, 0)
	if got, want := o.Committed(), empty.Committed(); got != want || len(o.Voters()) != 0 {
		t.Fatalf("zero order: committed %d (tracker %d), voters %v", got, want, o.Voters())
	}
}

// BenchmarkMemberOrder is BenchmarkTrackerHotPaths through the cached order.
func BenchmarkMemberOrder(b *testing.B) {
	for _, n := range []int{3, 7, 15} {
		cs := pb.ConfState{}
		for id := uint64(1); id <= uint64(n); id++ {
			cs.Voters = append(cs.Voters, id)
		}
		trk := trackerFor(cs)
		for id, pr := range trk.Progress {
			pr.Match = 100 + id
		}
		o := tracker.MakeMemberOrder(trk)
		b.Run("Visit/voters="+strconv.Itoa(n), func(b *testing.B) {
			var sum uint64
			b.ReportAllocs()
			for b.Loop() {
				o.Visit(func(_ uint64, pr *tracker.Progress) { sum += pr.Match })
			}
		})
		b.Run("Committed/voters="+strconv.Itoa(n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				o.Committed()
			}
		})
	}
}
