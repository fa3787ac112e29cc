package tracker_test

import (
	"math"
	"math/rand"
	"reflect"
	"slices"
	"strconv"
	"testing"

	"github.com/raftkit/raft/quorum"
	pb "github.com/raftkit/raft/raftpb"
	"github.com/raftkit/raft/tracker"
)

func set(ids ...uint64) map[uint64]struct{} {
	m := make(map[uint64]struct{}, len(ids))
	for _, id := range ids {
		m[id] = struct{}{}
	}
	return m
}

// trackerFor builds a tracker whose configuration is cs, with a Progress for
// every member (Match 0, active) as the raft package would create.
func trackerFor(cs pb.ConfState) *tracker.ProgressTracker {
	trk := tracker.MakeProgressTracker(8, 0)
	fromList := func(ids []uint64) map[uint64]struct{} {
		if ids == nil {
			return nil
		}
		return set(ids...)
	}
	trk.Voters = quorum.JointConfig{set(cs.Voters...), fromList(cs.VotersOutgoing)}
	trk.Learners = fromList(cs.Learners)
	trk.LearnersNext = fromList(cs.LearnersNext)
	trk.AutoLeave = cs.AutoLeave
	for _, ids := range [][]uint64{cs.Voters, cs.VotersOutgoing, cs.Learners, cs.LearnersNext} {
		for _, id := range ids {
			trk.Progress[id] = &tracker.Progress{Next: 1, RecentActive: true,
				Inflights: tracker.NewInflights(trk.MaxInflight, trk.MaxInflightBytes)}
		}
	}
	for _, id := range cs.Learners {
		trk.Progress[id].IsLearner = true
	}
	return &trk
}

func TestMakeProgressTracker(t *testing.T) {
	trk := tracker.MakeProgressTracker(16, 1024)
	if trk.MaxInflight != 16 || trk.MaxInflightBytes != 1024 {
		t.Fatalf("limits %d/%d", trk.MaxInflight, trk.MaxInflightBytes)
	}
	if trk.Voters[0] == nil || len(trk.Voters[0]) != 0 || trk.Voters[1] != nil {
		t.Fatalf("voters %#v: want an empty incoming half and a nil outgoing half", trk.Voters)
	}
	if trk.Learners != nil || trk.LearnersNext != nil || trk.AutoLeave {
		t.Fatalf("learner sets or AutoLeave set: %+v", trk.Config)
	}
	if trk.Progress == nil || trk.Votes == nil || len(trk.Progress)+len(trk.Votes) != 0 {
		t.Fatal("progress and votes must be empty, non-nil maps")
	}
	if got := trk.Config.String(); got != "voters=()" {
		t.Fatalf("String() = %q", got)
	}
	if got := trk.ConfState(); !reflect.DeepEqual(got, pb.ConfState{}) {
		t.Fatalf("ConfState() = %+v, want the zero value", got)
	}
	// With no voters nothing constrains the commit index: quorum treats an
	// empty configuration as agreeing to everything.
	if got := trk.Committed(); got != math.MaxUint64 {
		t.Fatalf("Committed() = %d, want MaxUint64", got)
	}
	// Recording a vote right away must not hit a nil map.
	trk.RecordVote(1, true)
}

func TestConfigString(t *testing.T) {
	for _, tc := range []struct {
		cfg  tracker.Config
		want string
	}{
		{tracker.Config{}, "voters=()"},
		{tracker.Config{Voters: quorum.JointConfig{set(3, 1, 2)}}, "voters=(1 2 3)"},
		{tracker.Config{Voters: quorum.JointConfig{set(1, 2), set(1)}}, "voters=(1 2)&&(1)"},
		// An empty outgoing half is not a joint configuration.
		{tracker.Config{Voters: quorum.JointConfig{set(1), set()}}, "voters=(1)"},
		{tracker.Config{Voters: quorum.JointConfig{set(1)}, Learners: set(12, 4)}, "voters=(1) learners=(4 12)"},
		// Non-nil but empty learner sets still print.
		{tracker.Config{Voters: quorum.JointConfig{set(1)}, Learners: set(), LearnersNext: set()},
			"voters=(1) learners=() learners_next=()"},
		{tracker.Config{
			Voters:       quorum.JointConfig{set(1, 2), set(1, 2, 3)},
			Learners:     set(5),
			LearnersNext: set(3),
			AutoLeave:    true,
		}, "voters=(1 2)&&(1 2 3) learners=(5) learners_next=(3) autoleave"},
	} {
		if got := tc.cfg.String(); got != tc.want {
			t.Errorf("got %q, want %q", got, tc.want)
		}
	}
}

func TestConfigClone(t *testing.T) {
	orig := tracker.Config{
		Voters:       quorum.JointConfig{set(1, 2), set(1, 2, 3)},
		Learners:     set(5),
		LearnersNext: set(3),
		AutoLeave:    true,
	}
	c := orig.Clone()
	if c.AutoLeave {
		t.Fatal("Clone carried AutoLeave over; etcd/raft v3.6 drops it")
	}
	c.AutoLeave = true
	if c.String() != orig.String() {
		t.Fatalf("clone %s differs from %s", c, orig)
	}
	c.Voters[0][9] = struct{}{}
	c.Voters[1][9] = struct{}{}
	c.Learners[9] = struct{}{}
	c.LearnersNext[9] = struct{}{}
	if want := "voters=(1 2)&&(1 2 3) learners=(5) learners_next=(3) autoleave"; orig.String() != want {
		t.Fatalf("original changed through the clone: %s", orig)
	}

	// Nil sets stay nil, so that String still tells them apart.
	simple := tracker.Config{Voters: quorum.JointConfig{set(1)}}
	sc := simple.Clone()
	if sc.Voters[1] != nil || sc.Learners != nil || sc.LearnersNext != nil {
		t.Fatalf("nil sets became non-nil: %#v", sc)
	}
	if sc.String() != "voters=(1)" {
		t.Fatalf("clone prints %q", sc.String())
	}
}

func TestConfStateRoundTrip(t *testing.T) {
	for _, cs := range []pb.ConfState{
		{Voters: []uint64{1}},
		{Voters: []uint64{1, 2, 3}, Learners: []uint64{4, 5}},
		{Voters: []uint64{1, 2}, VotersOutgoing: []uint64{1, 2, 3}, LearnersNext: []uint64{3}, AutoLeave: true},
		{Voters: []uint64{2, 7, 9}, VotersOutgoing: []uint64{1, 2}, Learners: []uint64{10}},
		{Learners: []uint64{6}}, // no voters at all
	} {
		trk := trackerFor(cs)
		if got := trk.ConfState(); !reflect.DeepEqual(got, cs) {
			t.Errorf("round trip of %+v gave %+v", cs, got)
		}
	}
	// The lists come out sorted whatever the map order, and empty lists
	// come out nil.
	trk := tracker.MakeProgressTracker(1, 0)
	trk.Voters = quorum.JointConfig{set(30, 10, 20), set()}
	trk.Learners = set()
	want := pb.ConfState{Voters: []uint64{10, 20, 30}}
	if got := trk.ConfState(); !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func TestIsSingleton(t *testing.T) {
	for _, tc := range []struct {
		cs   pb.ConfState
		want bool
	}{
		{pb.ConfState{}, false},
		{pb.ConfState{Voters: []uint64{1}}, true},
		{pb.ConfState{Voters: []uint64{1}, Learners: []uint64{2, 3}}, true},
		{pb.ConfState{Voters: []uint64{1, 2}}, false},
		{pb.ConfState{Voters: []uint64{1}, VotersOutgoing: []uint64{1}}, false},
		{pb.ConfState{Voters: []uint64{2}, VotersOutgoing: []uint64{1, 2}}, false},
	} {
		if got := trackerFor(tc.cs).IsSingleton(); got != tc.want {
			t.Errorf("%+v: IsSingleton() = %v, want %v", tc.cs, got, tc.want)
		}
	}
}

// withMatches sets each listed peer's Match (and Next past it).
func withMatches(trk *tracker.ProgressTracker, matches map[uint64]uint64) *tracker.ProgressTracker {
	for id, m := range matches {
		pr := trk.Progress[id]
		pr.Match, pr.Next = m, m+1
	}
	return trk
}

func TestCommitted(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cs      pb.ConfState
		matches map[uint64]uint64
		drop    []uint64 // peers without a Progress
		want    uint64
	}{
		{"single voter", pb.ConfState{Voters: []uint64{1}}, map[uint64]uint64{1: 9}, nil, 9},
		{"three voters: median", pb.ConfState{Voters: []uint64{1, 2, 3}},
			map[uint64]uint64{1: 10, 2: 4, 3: 7}, nil, 7},
		{"four voters need three", pb.ConfState{Voters: []uint64{1, 2, 3, 4}},
			map[uint64]uint64{1: 10, 2: 9, 3: 2, 4: 1}, nil, 2},
		{"learners do not count", pb.ConfState{Voters: []uint64{1, 2, 3}, Learners: []uint64{4, 5}},
			map[uint64]uint64{1: 10, 2: 1, 3: 1, 4: 10, 5: 10}, nil, 1},
		{"untracked voter counts as nothing acked", pb.ConfState{Voters: []uint64{1, 2, 3}},
			map[uint64]uint64{1: 10, 2: 8}, []uint64{3}, 8},
		{"joint: the outgoing half holds it back",
			pb.ConfState{Voters: []uint64{1, 2, 3}, VotersOutgoing: []uint64{3, 4, 5}},
			map[uint64]uint64{1: 20, 2: 20, 3: 20, 4: 6, 5: 5}, nil, 6},
		{"joint: the incoming half holds it back",
			pb.ConfState{Voters: []uint64{1, 2, 3}, VotersOutgoing: []uint64{1}},
			map[uint64]uint64{1: 20, 2: 3, 3: 4}, nil, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			trk := withMatches(trackerFor(tc.cs), tc.matches)
			for _, id := range tc.drop {
				delete(trk.Progress, id)
			}
			if got := trk.Committed(); got != tc.want {
				t.Fatalf("Committed() = %d, want %d", got, tc.want)
			}
		})
	}
}

// naiveCommitted is the highest index that a majority of every non-empty
// half has acknowledged, found by trying every candidate.
func naiveCommitted(trk *tracker.ProgressTracker) uint64 {
	best := uint64(math.MaxUint64)
	for _, half := range trk.Voters {
		if len(half) == 0 {
			continue
		}
		var c uint64
		for _, pr := range trk.Progress {
			idx := pr.Match
			n := 0
			for id := range half {
				if p, ok := trk.Progress[id]; ok && p.Match >= idx {
					n++
				}
			}
			if n > len(half)/2 && idx > c {
				c = idx
			}
		}
		best = min(best, c)
	}
	return best
}

func TestCommittedMatchesNaive(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	pick := func(max int) []uint64 {
		var ids []uint64
		for id := uint64(1); id <= 7; id++ {
			if rng.Intn(7) < max {
				ids = append(ids, id)
			}
		}
		return ids
	}
	for i := 0; i < 2000; i++ {
		cs := pb.ConfState{Voters: pick(4)}
		if rng.Intn(2) == 0 {
			cs.VotersOutgoing = pick(4)
		}
		if len(cs.Voters)+len(cs.VotersOutgoing) == 0 {
			continue
		}
		trk := trackerFor(cs)
		for _, pr := range trk.Progress {
			pr.Match = uint64(rng.Intn(20))
		}
		if got, want := trk.Committed(), naiveCommitted(trk); got != want {
			t.Fatalf("%s with %v: Committed() = %d, naive %d", trk.Config, trk.Progress, got, want)
		}
	}
}

func TestVisit(t *testing.T) {
	for _, n := range []int{0, 1, 5, 8, 9, 40} {
		trk := tracker.MakeProgressTracker(1, 0)
		rng := rand.New(rand.NewSource(int64(n)))
		for len(trk.Progress) < n {
			trk.Progress[uint64(1+rng.Intn(1000))] = &tracker.Progress{}
		}
		var seen []uint64
		trk.Visit(func(id uint64, pr *tracker.Progress) {
			if pr != trk.Progress[id] {
				t.Fatalf("Visit passed the wrong Progress for %d", id)
			}
			pr.Match = id // writes through
			seen = append(seen, id)
		})
		if len(seen) != n || !slices.IsSorted(seen) {
			t.Fatalf("n=%d: visited %v", n, seen)
		}
		for id, pr := range trk.Progress {
			if pr.Match != id {
				t.Fatalf("n=%d: change made in Visit lost for %d", n, id)
			}
		}
	}
}

// TestVisitSmallClusterDoesNotAllocate guards the fast path used on every
// tick: up to eight peers are sorted without a heap allocation.
func TestVisitSmallClusterDoesNotAllocate(t *testing.T) {
	trk := trackerFor(pb.ConfState{Voters: []uint64{5, 3, 1}, Learners: []uint64{9, 7}})
	var sum uint64
	visit := func(id uint64, _ *tracker.Progress) { sum += id }
	if n := testing.AllocsPerRun(100, func() { trk.Visit(visit) }); n != 0 {
		t.Fatalf("%v allocations per Visit of 5 peers", n)
	}
}

func TestQuorumActive(t *testing.T) {
	for _, tc := range []struct {
		name     string
		cs       pb.ConfState
		inactive []uint64
		drop     []uint64
		want     bool
	}{
		{"all active", pb.ConfState{Voters: []uint64{1, 2, 3}}, nil, nil, true},
		{"minority inactive", pb.ConfState{Voters: []uint64{1, 2, 3}}, []uint64{3}, nil, true},
		{"majority inactive", pb.ConfState{Voters: []uint64{1, 2, 3}}, []uint64{2, 3}, nil, false},
		{"half of four is not a quorum", pb.ConfState{Voters: []uint64{1, 2, 3, 4}}, []uint64{3, 4}, nil, false},
		{"active learners do not help",
			pb.ConfState{Voters: []uint64{1, 2, 3}, Learners: []uint64{4, 5, 6}}, []uint64{2, 3}, nil, false},
		{"inactive learners do not hurt",
			pb.ConfState{Voters: []uint64{1, 2, 3}, Learners: []uint64{4, 5, 6}}, []uint64{4, 5, 6}, nil, true},
		{"untracked voter counts as inactive",
			pb.ConfState{Voters: []uint64{1, 2, 3}}, []uint64{3}, []uint64{2}, false},
		{"joint: both halves must be active",
			pb.ConfState{Voters: []uint64{1, 2, 3}, VotersOutgoing: []uint64{4, 5, 6}}, []uint64{5, 6}, nil, false},
		{"joint: a minority in each half may be inactive",
			pb.ConfState{Voters: []uint64{1, 2, 3}, VotersOutgoing: []uint64{3, 4, 5}}, []uint64{3}, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			trk := trackerFor(tc.cs)
			for _, id := range tc.inactive {
				trk.Progress[id].RecentActive = false
			}
			for _, id := range tc.drop {
				delete(trk.Progress, id)
			}
			if got := trk.QuorumActive(); got != tc.want {
				t.Fatalf("QuorumActive() = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestVoterAndLearnerNodes(t *testing.T) {
	for _, tc := range []struct {
		cs           pb.ConfState
		wantVoters   []uint64
		wantLearners []uint64
	}{
		{pb.ConfState{}, []uint64{}, nil},
		{pb.ConfState{Voters: []uint64{9, 2, 5}}, []uint64{2, 5, 9}, nil},
		{pb.ConfState{Voters: []uint64{3, 1}, VotersOutgoing: []uint64{1, 2}, LearnersNext: []uint64{2}},
			[]uint64{1, 2, 3}, nil},
		{pb.ConfState{Voters: []uint64{1}, Learners: []uint64{30, 4}}, []uint64{1}, []uint64{4, 30}},
	} {
		trk := trackerFor(tc.cs)
		if got := trk.VoterNodes(); !reflect.DeepEqual(got, tc.wantVoters) {
			t.Errorf("%+v: VoterNodes() = %#v, want %#v", tc.cs, got, tc.wantVoters)
		}
		if got := trk.LearnerNodes(); !reflect.DeepEqual(got, tc.wantLearners) {
			t.Errorf("%+v: LearnerNodes() = %#v, want %#v", tc.cs, got, tc.wantLearners)
		}
	}
	// An empty but non-nil learner set still yields nil.
	trk := trackerFor(pb.ConfState{Voters: []uint64{1}})
	trk.Learners = set()
	if got := trk.LearnerNodes(); got != nil {
		t.Fatalf("LearnerNodes() = %#v for an empty set", got)
	}
}

func TestVotes(t *testing.T) {
	type vote struct {
		id      uint64
		granted bool
	}
	for _, tc := range []struct {
		name        string
		cs          pb.ConfState
		votes       []vote
		wantGranted int
		wantRejects int
		want        quorum.VoteResult
	}{
		{"no votes yet", pb.ConfState{Voters: []uint64{1, 2, 3}}, nil, 0, 0, quorum.VotePending},
		{"own vote only", pb.ConfState{Voters: []uint64{1, 2, 3}}, []vote{{1, true}}, 1, 0, quorum.VotePending},
		{"majority granted", pb.ConfState{Voters: []uint64{1, 2, 3}}, []vote{{1, true}, {3, true}}, 2, 0, quorum.VoteWon},
		{"majority rejected", pb.ConfState{Voters: []uint64{1, 2, 3}},
			[]vote{{1, true}, {2, false}, {3, false}}, 1, 2, quorum.VoteLost},
		{"single voter wins alone", pb.ConfState{Voters: []uint64{1}}, []vote{{1, true}}, 1, 0, quorum.VoteWon},
		{"first answer is final", pb.ConfState{Voters: []uint64{1, 2, 3}},
			[]vote{{1, true}, {2, false}, {2, true}, {3, false}, {3, true}}, 1, 2, quorum.VoteLost},
		{"learner and stranger votes are not tallied", pb.ConfState{Voters: []uint64{1, 2, 3}, Learners: []uint64{4}},
			[]vote{{1, true}, {4, true}, {99, true}}, 1, 0, quorum.VotePending},
		{"joint: winning the incoming half is not enough",
			pb.ConfState{Voters: []uint64{1, 2, 3}, VotersOutgoing: []uint64{4, 5, 6}},
			[]vote{{1, true}, {2, true}, {4, true}}, 3, 0, quorum.VotePending},
		{"joint: losing one half loses",
			pb.ConfState{Voters: []uint64{1, 2, 3}, VotersOutgoing: []uint64{3, 4, 5}},
			[]vote{{1, true}, {2, true}, {4, false}, {5, false}}, 2, 2, quorum.VoteLost},
		{"joint: both halves won",
			pb.ConfState{Voters: []uint64{1, 2, 3}, VotersOutgoing: []uint64{3, 4, 5}},
			[]vote{{1, true}, {3, true}, {4, true}}, 3, 0, quorum.VoteWon},
	} {
		t.Run(tc.name, func(t *testing.T) {
			trk := trackerFor(tc.cs)
			for _, v := range tc.votes {
				trk.RecordVote(v.id, v.granted)
			}
			g, r, res := trk.TallyVotes()
			if g != tc.wantGranted || r != tc.wantRejects || res != tc.want {
				t.Fatalf("TallyVotes() = %d, %d, %v; want %d, %d, %v", g, r, res, tc.wantGranted, tc.wantRejects, tc.want)
			}
			// A new election starts from nothing.
			trk.ResetVotes()
			if g, r, res := trk.TallyVotes(); g != 0 || r != 0 || res != quorum.VotePending {
				t.Fatalf("after ResetVotes: %d, %d, %v", g, r, res)
			}
		})
	}
}

// BenchmarkTrackerHotPaths measures what the leader does per tick and per
// append response: visiting every peer, and recomputing the commit index.
func BenchmarkTrackerHotPaths(b *testing.B) {
	for _, n := range []int{3, 7, 15} {
		cs := pb.ConfState{}
		for id := uint64(1); id <= uint64(n); id++ {
			cs.Voters = append(cs.Voters, id)
		}
		trk := trackerFor(cs)
		for id, pr := range trk.Progress {
			pr.Match = 100 + id
		}
		b.Run("Visit/voters="+strconv.Itoa(n), func(b *testing.B) {
			var sum uint64
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				trk.Visit(func(_ uint64, pr *tracker.Progress) { sum += pr.Match })
			}
		})
		b.Run("Committed/voters="+strconv.Itoa(n), func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				trk.Committed()
			}
		})
	}
}
