package tracker_test

import (
	"math"
	"math/rand"
	"testing"

	"github.com/raftkit/raft/tracker"
)

// view is what a test can observe of a Progress, including the sent commit
// index (via export_test.go).
type view struct {
	State      tracker.StateType
	Match      uint64
	Next       uint64
	PendingSn  uint64
	SentCommit uint64
	PauseFlag  bool
	Inflight   int
}

func viewOf(pr *tracker.Progress) view {
	return view{
		State:      pr.State,
		Match:      pr.Match,
		Next:       pr.Next,
		PendingSn:  pr.PendingSnapshot,
		SentCommit: tracker.SentCommitOf(pr),
		PauseFlag:  pr.MsgAppFlowPaused,
		Inflight:   pr.Inflights.Count(),
	}
}

// prOpts describes a Progress to build for a test. Building goes through the
// exported API so the Progress is one the raft package could produce.
type prOpts struct {
	state      tracker.StateType
	match      uint64
	next       uint64 // in StateReplicate: reached by sending one entry at a time
	sentCommit uint64
	paused     bool
	window     int // Inflights size; 0 means 10
	pendingSn  uint64
}

func build(t *testing.T, o prOpts) *tracker.Progress {
	t.Helper()
	if o.window == 0 {
		o.window = 10
	}
	pr := &tracker.Progress{Match: o.match, Next: o.match + 1, RecentActive: true,
		Inflights: tracker.NewInflights(o.window, 0)}
	switch o.state {
	case tracker.StateProbe:
		pr.BecomeProbe()
		if o.next != 0 {
			pr.Next = o.next
		}
	case tracker.StateReplicate:
		pr.BecomeReplicate()
		for pr.Next < o.next {
			pr.SentEntries(1, 1)
		}
	case tracker.StateSnapshot:
		pr.BecomeSnapshot(o.pendingSn)
	}
	if o.sentCommit != 0 {
		pr.SentCommit(o.sentCommit)
	}
	pr.MsgAppFlowPaused = o.paused
	return pr
}

func TestStateTypeString(t *testing.T) {
	for st, want := range map[tracker.StateType]string{
		tracker.StateProbe:     "StateProbe",
		tracker.StateReplicate: "StateReplicate",
		tracker.StateSnapshot:  "StateSnapshot",
	} {
		if got := st.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", uint64(st), got, want)
		}
	}
}

func TestProgressTransitions(t *testing.T) {
	for _, tc := range []struct {
		name string
		from prOpts
		op   func(*tracker.Progress)
		want view
	}{{
		name: "probe to replicate restarts after match and unpauses",
		from: prOpts{state: tracker.StateProbe, match: 4, next: 9, paused: true, sentCommit: 7},
		op:   (*tracker.Progress).BecomeReplicate,
		want: view{State: tracker.StateReplicate, Match: 4, Next: 5, SentCommit: 7},
	}, {
		name: "replicate to snapshot drops the window and sets the sent commit",
		from: prOpts{state: tracker.StateReplicate, match: 4, next: 8, sentCommit: 6},
		op:   func(pr *tracker.Progress) { pr.BecomeSnapshot(20) },
		want: view{State: tracker.StateSnapshot, Match: 4, Next: 21, PendingSn: 20, SentCommit: 20},
	}, {
		name: "snapshot to probe continues after the snapshot",
		from: prOpts{state: tracker.StateSnapshot, match: 4, pendingSn: 20},
		op:   (*tracker.Progress).BecomeProbe,
		want: view{State: tracker.StateProbe, Match: 4, Next: 21, SentCommit: 20},
	}, {
		name: "snapshot to probe when match already passed the snapshot",
		from: prOpts{state: tracker.StateSnapshot, match: 30, pendingSn: 20},
		op:   (*tracker.Progress).BecomeProbe,
		want: view{State: tracker.StateProbe, Match: 30, Next: 31, SentCommit: 20},
	}, {
		name: "replicate to probe rewinds next and the sent commit",
		from: prOpts{state: tracker.StateReplicate, match: 4, next: 12, sentCommit: 11},
		op:   (*tracker.Progress).BecomeProbe,
		want: view{State: tracker.StateProbe, Match: 4, Next: 5, SentCommit: 4},
	}, {
		name: "probe to probe keeps a low sent commit",
		from: prOpts{state: tracker.StateProbe, match: 4, next: 9, sentCommit: 2, paused: true},
		op:   (*tracker.Progress).BecomeProbe,
		want: view{State: tracker.StateProbe, Match: 4, Next: 5, SentCommit: 2},
	}, {
		name: "snapshot acknowledged then replicate",
		from: prOpts{state: tracker.StateSnapshot, match: 4, pendingSn: 20},
		op: func(pr *tracker.Progress) {
			pr.MaybeUpdate(20)
			pr.BecomeReplicate()
		},
		want: view{State: tracker.StateReplicate, Match: 20, Next: 21, SentCommit: 20},
	}, {
		name: "ResetState clears pause, pending snapshot and window only",
		from: prOpts{state: tracker.StateReplicate, match: 4, next: 9, paused: true, sentCommit: 8},
		op: func(pr *tracker.Progress) {
			pr.PendingSnapshot = 3
			pr.ResetState(tracker.StateProbe)
		},
		want: view{State: tracker.StateProbe, Match: 4, Next: 9, SentCommit: 8},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			pr := build(t, tc.from)
			tc.op(pr)
			if got := viewOf(pr); got != tc.want {
				t.Fatalf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestProgressMaybeUpdate(t *testing.T) {
	for _, tc := range []struct {
		name                string
		match, next, n      uint64
		wantOK              bool
		wantMatch, wantNext uint64
	}{
		{"older ack is stale", 10, 15, 7, false, 10, 15},
		{"duplicate ack is stale", 10, 15, 10, false, 10, 15},
		{"ack inside the in-flight range", 10, 15, 12, true, 12, 15},
		{"ack of everything sent", 10, 15, 14, true, 14, 15},
		{"ack beyond next pushes next", 10, 15, 40, true, 40, 41},
		{"first ack from zero", 0, 1, 1, true, 1, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pr := build(t, prOpts{state: tracker.StateProbe, match: tc.match, next: tc.next, paused: true})
			ok := pr.MaybeUpdate(tc.n)
			if ok != tc.wantOK || pr.Match != tc.wantMatch || pr.Next != tc.wantNext {
				t.Fatalf("MaybeUpdate(%d) = %v with match=%d next=%d; want %v with match=%d next=%d",
					tc.n, ok, pr.Match, pr.Next, tc.wantOK, tc.wantMatch, tc.wantNext)
			}
			// Only a fresh ack unpauses the flow.
			if pr.MsgAppFlowPaused != !tc.wantOK {
				t.Fatalf("pause flag %v after MaybeUpdate = %v", pr.MsgAppFlowPaused, ok)
			}
		})
	}
}

func TestProgressMaybeDecrTo(t *testing.T) {
	var cases []decrToCase
	cases = append(cases, decrToReplicateCases()...)
	cases = append(cases, decrToProbeCases()...)
	cases = append(cases, decrToSnapshotCases()...)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pr := build(t, tc.from)
			ok := pr.MaybeDecrTo(tc.rejected, tc.hint)
			if ok != tc.wantOK {
				t.Fatalf("MaybeDecrTo(%d, %d) = %v, want %v", tc.rejected, tc.hint, ok, tc.wantOK)
			}
			if got := viewOf(pr); got != tc.want {
				t.Fatalf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

// decrToCase is a progress, a rejection with its hint, and what MaybeDecrTo
// must return and leave behind.
type decrToCase struct {
	name           string
	from           prOpts
	rejected, hint uint64
	wantOK         bool
	want           view
}

// decrToReplicateCases are MaybeDecrTo cases for a peer in StateReplicate.
func decrToReplicateCases() []decrToCase {
	return []decrToCase{{
		name:     "replicate: rejection below match is stale",
		from:     prOpts{state: tracker.StateReplicate, match: 10, next: 16, sentCommit: 14, paused: true},
		rejected: 9, hint: 3,
		want: view{State: tracker.StateReplicate, Match: 10, Next: 16, SentCommit: 14, PauseFlag: true, Inflight: 5},
	}, {
		name:     "replicate: rejection at match is stale",
		from:     prOpts{state: tracker.StateReplicate, match: 10, next: 16, sentCommit: 14},
		rejected: 10, hint: 3,
		want: view{State: tracker.StateReplicate, Match: 10, Next: 16, SentCommit: 14, Inflight: 5},
	}, {
		name:     "replicate: genuine rejection rewinds to match+1 whatever the hint",
		from:     prOpts{state: tracker.StateReplicate, match: 10, next: 16, sentCommit: 14, paused: true},
		rejected: 13, hint: 12, wantOK: true,
		// The window and the pause flag are left to the caller (which goes
		// to StateProbe next).
		want: view{State: tracker.StateReplicate, Match: 10, Next: 11, SentCommit: 10, PauseFlag: true, Inflight: 5},
	}}
}

// decrToProbeCases are MaybeDecrTo cases for a peer in StateProbe.
func decrToProbeCases() []decrToCase {
	return []decrToCase{{
		name:     "probe: rejection of an older probe is stale",
		from:     prOpts{state: tracker.StateProbe, match: 2, next: 9, sentCommit: 8, paused: true},
		rejected: 7, hint: 3,
		want: view{State: tracker.StateProbe, Match: 2, Next: 9, SentCommit: 8, PauseFlag: true},
	}, {
		name:     "probe: rejection of a newer index is stale",
		from:     prOpts{state: tracker.StateProbe, match: 2, next: 9, paused: true},
		rejected: 9, hint: 3,
		want: view{State: tracker.StateProbe, Match: 2, Next: 9, PauseFlag: true},
	}, {
		name:     "probe: hint lands between match and rejected",
		from:     prOpts{state: tracker.StateProbe, match: 2, next: 9, sentCommit: 8, paused: true},
		rejected: 8, hint: 5, wantOK: true,
		want: view{State: tracker.StateProbe, Match: 2, Next: 6, SentCommit: 5},
	}, {
		name:     "probe: hint below match is clamped to match+1",
		from:     prOpts{state: tracker.StateProbe, match: 4, next: 9, sentCommit: 3, paused: true},
		rejected: 8, hint: 1, wantOK: true,
		want: view{State: tracker.StateProbe, Match: 4, Next: 5, SentCommit: 3},
	}, {
		name:     "probe: hint at or above rejected retries rejected",
		from:     prOpts{state: tracker.StateProbe, match: 2, next: 9, paused: true},
		rejected: 8, hint: 50, wantOK: true,
		want: view{State: tracker.StateProbe, Match: 2, Next: 8},
	}, {
		name:     "probe: hint of MaxUint64 wraps to match+1 as in etcd/raft",
		from:     prOpts{state: tracker.StateProbe, match: 2, next: 9, paused: true},
		rejected: 8, hint: math.MaxUint64, wantOK: true,
		want: view{State: tracker.StateProbe, Match: 2, Next: 3},
	}, {
		name:     "probe: rejecting the very first probe",
		from:     prOpts{state: tracker.StateProbe, match: 0, next: 1, paused: true},
		rejected: 0, hint: 0, wantOK: true,
		want: view{State: tracker.StateProbe, Match: 0, Next: 1},
	}}
}

// decrToSnapshotCases are MaybeDecrTo cases for a peer in StateSnapshot.
func decrToSnapshotCases() []decrToCase {
	return []decrToCase{{
		name:     "snapshot: only the probe at the snapshot index counts, and the state stays",
		from:     prOpts{state: tracker.StateSnapshot, match: 2, pendingSn: 20},
		rejected: 20, hint: 6, wantOK: true,
		want: view{State: tracker.StateSnapshot, Match: 2, Next: 7, PendingSn: 20, SentCommit: 6},
	}, {
		name:     "snapshot: other rejections are stale",
		from:     prOpts{state: tracker.StateSnapshot, match: 2, pendingSn: 20},
		rejected: 19, hint: 6,
		want: view{State: tracker.StateSnapshot, Match: 2, Next: 21, PendingSn: 20, SentCommit: 20},
	}}
}

func TestProgressIsPaused(t *testing.T) {
	fullWindow := func(t *testing.T, paused bool) *tracker.Progress {
		pr := build(t, prOpts{state: tracker.StateReplicate, match: 1, window: 2})
		pr.SentEntries(1, 1)
		pr.SentEntries(1, 1)
		pr.MsgAppFlowPaused = paused
		return pr
	}
	for _, tc := range []struct {
		name string
		pr   func(t *testing.T) *tracker.Progress
		want bool
	}{
		{"probe", func(t *testing.T) *tracker.Progress { return build(t, prOpts{state: tracker.StateProbe}) }, false},
		{"probe paused", func(t *testing.T) *tracker.Progress {
			return build(t, prOpts{state: tracker.StateProbe, paused: true})
		}, true},
		{"replicate", func(t *testing.T) *tracker.Progress {
			return build(t, prOpts{state: tracker.StateReplicate, next: 4})
		}, false},
		{"replicate paused", func(t *testing.T) *tracker.Progress {
			return build(t, prOpts{state: tracker.StateReplicate, paused: true})
		}, true},
		// Only the flag counts: a full window with the flag cleared (by a
		// heartbeat response) lets one more message out.
		{"replicate full window, flag cleared", func(t *testing.T) *tracker.Progress { return fullWindow(t, false) }, false},
		{"replicate full window, flag set", func(t *testing.T) *tracker.Progress { return fullWindow(t, true) }, true},
		{"snapshot", func(t *testing.T) *tracker.Progress {
			return build(t, prOpts{state: tracker.StateSnapshot, pendingSn: 5})
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.pr(t).IsPaused(); got != tc.want {
				t.Fatalf("IsPaused() = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestProgressSentEntriesReplicate(t *testing.T) {
	pr := &tracker.Progress{Match: 5, Next: 6, State: tracker.StateReplicate,
		Inflights: tracker.NewInflights(3, 100)}
	steps := []struct {
		entries   int
		bytes     uint64
		wantNext  uint64
		wantCount int
		wantPause bool
	}{
		{3, 10, 9, 1, false},  // 6..8 in flight
		{0, 0, 9, 1, false},   // empty append: nothing to track
		{1, 10, 10, 2, false}, // 9
		{2, 10, 12, 3, true},  // 10..11 fills the window by count
		{0, 0, 12, 3, true},   // an empty append while full stays paused
	}
	for i, s := range steps {
		pr.SentEntries(s.entries, s.bytes)
		if pr.Next != s.wantNext || pr.Inflights.Count() != s.wantCount || pr.MsgAppFlowPaused != s.wantPause {
			t.Fatalf("step %d: next=%d count=%d paused=%v; want next=%d count=%d paused=%v", i,
				pr.Next, pr.Inflights.Count(), pr.MsgAppFlowPaused, s.wantNext, s.wantCount, s.wantPause)
		}
	}
	// An ack frees the window; the next send, even empty, recomputes the
	// flag from the window.
	pr.Inflights.FreeLE(9)
	pr.SentEntries(0, 0)
	if pr.MsgAppFlowPaused {
		t.Fatal("still paused after the window drained")
	}
	// A single message over the byte limit pauses too.
	pr.SentEntries(4, 150)
	if !pr.MsgAppFlowPaused || pr.Next != 16 {
		t.Fatalf("after oversize message: paused=%v next=%d", pr.MsgAppFlowPaused, pr.Next)
	}
}

func TestProgressSentEntriesProbe(t *testing.T) {
	for _, tc := range []struct {
		entries   int
		before    bool
		wantPause bool
	}{
		{entries: 0, before: false, wantPause: false},
		{entries: 0, before: true, wantPause: true},
		{entries: 3, before: false, wantPause: true},
		{entries: 1, before: true, wantPause: true},
	} {
		pr := build(t, prOpts{state: tracker.StateProbe, match: 5, next: 7, paused: tc.before})
		pr.SentEntries(tc.entries, 100)
		// In StateProbe, Next does not move and nothing enters the window.
		if pr.MsgAppFlowPaused != tc.wantPause || pr.Next != 7 || pr.Inflights.Count() != 0 {
			t.Errorf("SentEntries(%d) with paused=%v: paused=%v next=%d count=%d",
				tc.entries, tc.before, pr.MsgAppFlowPaused, pr.Next, pr.Inflights.Count())
		}
	}
}

func TestProgressSentEntriesInSnapshotPanics(t *testing.T) {
	pr := build(t, prOpts{state: tracker.StateSnapshot, pendingSn: 9})
	defer func() {
		if recover() == nil {
			t.Fatal("SentEntries in StateSnapshot did not panic")
		}
	}()
	pr.SentEntries(1, 1)
}

func TestProgressCommitTracking(t *testing.T) {
	pr := build(t, prOpts{state: tracker.StateReplicate, match: 3, next: 10})
	type check struct {
		index uint64
		want  bool
	}
	expect := func(stage string, checks ...check) {
		t.Helper()
		for _, c := range checks {
			if got := pr.CanBumpCommit(c.index); got != c.want {
				t.Errorf("%s: CanBumpCommit(%d) = %v, want %v (sent %d, next %d)",
					stage, c.index, got, c.want, tracker.SentCommitOf(pr), pr.Next)
			}
		}
	}
	expect("nothing sent", check{0, false}, check{1, true}, check{50, true})
	pr.SentCommit(5)
	expect("sent 5", check{5, false}, check{4, false}, check{6, true})
	pr.SentCommit(9) // Next-1: the follower can commit all it was sent
	expect("sent next-1", check{10, false}, check{100, false})
	pr.SentEntries(2, 1) // new entries make room again
	expect("more entries", check{9, false}, check{10, true})
	pr.SentCommit(11)
	// A rejection makes the sent commit suspect: it is capped below Next.
	if !pr.MaybeDecrTo(8, 8) {
		t.Fatal("rejection above match not accepted")
	}
	if got := tracker.SentCommitOf(pr); got != 3 {
		t.Fatalf("sent commit %d after rejection, want 3", got)
	}
	expect("after rejection", check{3, false}, check{4, false})
	pr.MaybeUpdate(8)
	expect("after ack", check{4, true})
}

func TestProgressString(t *testing.T) {
	for _, tc := range []struct {
		name string
		pr   func() *tracker.Progress
		want string
	}{{
		name: "plain replicate",
		pr: func() *tracker.Progress {
			return &tracker.Progress{State: tracker.StateReplicate, Match: 7, Next: 8, RecentActive: true,
				Inflights: tracker.NewInflights(4, 0)}
		},
		want: "StateReplicate match=7 next=8",
	}, {
		name: "every flag",
		pr: func() *tracker.Progress {
			pr := &tracker.Progress{Match: 11, Next: 12, IsLearner: true, Inflights: tracker.NewInflights(3, 0)}
			pr.BecomeReplicate()
			for i := 0; i < 3; i++ {
				pr.SentEntries(1, 1)
			}
			pr.PendingSnapshot = 4 // not normally set in StateReplicate, but printed if so
			return pr
		},
		want: "StateReplicate match=11 next=15 learner paused pendingSnap=4 inactive inflight=3[full]",
	}, {
		name: "full window without pause flag",
		pr: func() *tracker.Progress {
			pr := &tracker.Progress{Match: 1, Next: 2, RecentActive: true, Inflights: tracker.NewInflights(1, 0)}
			pr.BecomeReplicate()
			pr.SentEntries(1, 1)
			pr.MsgAppFlowPaused = false
			return pr
		},
		want: "StateReplicate match=1 next=3 inflight=1[full]",
	}, {
		name: "snapshot always paused",
		pr: func() *tracker.Progress {
			pr := &tracker.Progress{Match: 2, Next: 3, RecentActive: true, Inflights: tracker.NewInflights(1, 0)}
			pr.BecomeSnapshot(30)
			return pr
		},
		want: "StateSnapshot match=2 next=31 paused pendingSnap=30",
	}, {
		name: "inactive probe",
		pr: func() *tracker.Progress {
			return &tracker.Progress{Next: 1, Inflights: tracker.NewInflights(1, 0)}
		},
		want: "StateProbe match=0 next=1 inactive",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.pr().String(); got != tc.want {
				t.Fatalf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestProgressMapString(t *testing.T) {
	mk := func(match uint64, active bool) *tracker.Progress {
		return &tracker.Progress{Match: match, Next: match + 1, RecentActive: active,
			Inflights: tracker.NewInflights(2, 0)}
	}
	m := tracker.ProgressMap{12: mk(3, true), 2: mk(5, false), 7: mk(0, true)}
	want := "2: StateProbe match=5 next=6 inactive\n" +
		"7: StateProbe match=0 next=1\n" +
		"12: StateProbe match=3 next=4\n"
	if got := m.String(); got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	if got := (tracker.ProgressMap{}).String(); got != "" {
		t.Fatalf("empty map printed %q", got)
	}
}

// TestProgressInvariantsUnderRandomOps applies random sequences of the
// leader's operations and checks that Match < Next always holds and that the
// window never exceeds its size.
func TestProgressInvariantsUnderRandomOps(t *testing.T) {
	rng := rand.New(rand.NewSource(7))
	const window = 4
	for iter := 0; iter < 200; iter++ {
		pr := &tracker.Progress{Next: 1, Inflights: tracker.NewInflights(window, 0)}
		last := uint64(0) // the leader's last index
		for step := 0; step < 100; step++ {
			last += uint64(rng.Intn(3))
			switch op := rng.Intn(7); {
			case op == 0:
				pr.BecomeProbe()
			case op == 1:
				pr.BecomeReplicate()
			case op == 2 && last > 0:
				pr.BecomeSnapshot(last)
			case op == 3 && pr.State != tracker.StateSnapshot && !pr.IsPaused():
				n := 0
				if pr.Next <= last {
					n = 1 + rng.Intn(int(last-pr.Next+1))
				}
				pr.SentEntries(n, uint64(n))
			case op == 4 && pr.Next > 1:
				pr.MaybeUpdate(uint64(rng.Int63n(int64(pr.Next))))
			case op == 5:
				pr.MaybeDecrTo(pr.Next-1, uint64(rng.Int63n(int64(pr.Next))))
			case op == 6:
				pr.Inflights.FreeLE(pr.Match)
			}
			if pr.Match >= pr.Next {
				t.Fatalf("iter %d step %d: invariant Match < Next broken: %s", iter, step, pr)
			}
			if pr.Inflights.Count() > window {
				t.Fatalf("iter %d step %d: %d in flight, window %d", iter, step, pr.Inflights.Count(), window)
			}
		}
	}
}
