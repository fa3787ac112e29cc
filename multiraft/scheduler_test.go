package multiraft

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/raftkit/raft/raftpb"
)

// A group that gets more work while a worker holds it goes to the tail of
// the queue, behind the groups that waited: a busy group cannot starve
// the others.
func TestSchedulerFairness(t *testing.T) {
	s := newScheduler(1)
	a, b, c := &group{id: 1}, &group{id: 2}, &group{id: 3}
	for _, g := range []*group{a, b, c} {
		s.enqueue(g)
	}
	var order []GroupID
	for i := 0; i < 6; i++ {
		gs := s.tryNext()
		if len(gs) != 1 {
			t.Fatalf("took %d groups with MaxBatch 1", len(gs))
		}
		order = append(order, gs[0].id)
		if gs[0] == a {
			s.enqueue(a) // a always has more work
		}
		s.done(gs, []bool{false})
	}
	want := []GroupID{1, 2, 3, 1, 1, 1}
	for i := range want {
		if order[i] != want[i] {
			t.Fatalf("order %v, want %v", order, want)
		}
	}
	if gs := s.tryNext(); len(gs) != 1 || gs[0] != a || s.tryNext() != nil {
		t.Fatalf("queue should hold a once: %v", gs)
	}
}

// A group is queued once however much work arrives, and is never handed
// to a second worker while one holds it.
func TestSchedulerOneWorkerPerGroup(t *testing.T) {
	s := newScheduler(4)
	g := &group{id: 1}
	s.enqueue(g)
	s.enqueue(g)
	gs := s.tryNext()
	if len(gs) != 1 {
		t.Fatalf("group queued %d times", len(gs))
	}
	s.enqueue(g)
	if more := s.tryNext(); more != nil {
		t.Fatal("a running group was handed out again")
	}
	s.done(gs, []bool{false})
	if more := s.tryNext(); len(more) != 1 {
		t.Fatal("work that arrived while running was lost")
	}
}

// concApp checks that no group is applied by two workers at once and that
// no more workers than configured run at once.
type concApp struct {
	recApp
	perGroup sync.Map // GroupID -> *atomic.Int32
	now, max atomic.Int32
	bad      atomic.Bool
}

func (a *concApp) Apply(g GroupID, ents []raftpb.Entry) {
	v, _ := a.perGroup.LoadOrStore(g, new(atomic.Int32))
	c := v.(*atomic.Int32)
	if c.Add(1) != 1 {
		a.bad.Store(true)
	}
	n := a.now.Add(1)
	for {
		m := a.max.Load()
		if n <= m || a.max.CompareAndSwap(m, n) {
			break
		}
	}
	runtime.Gosched()
	a.recApp.Apply(g, ents)
	a.now.Add(-1)
	c.Add(-1)
}

// Many groups with work are driven by the fixed pool: no goroutine per
// group, at most Workers at once, one worker per group at a time.
func TestWorkerPoolBounded(t *testing.T) {
	const groups, workers = 200, 3
	app := &concApp{recApp: *newRecApp()}
	net := NewMemNetwork()
	before := runtime.NumGoroutine()
	h, err := New(HostConfig{ID: 1, Storage: NewMemStorage(), Transport: net.Endpoint(1), App: app,
		Workers: workers, MaxBatch: 8, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	for g := GroupID(1); g <= groups; g++ {
		if err := h.CreateGroup(GroupConfig{ID: g, Members: []HostID{1}}); err != nil {
			t.Fatal(err)
		}
	}
	if n := runtime.NumGoroutine() - before; n > workers+1 {
		t.Fatalf("%d goroutines for %d groups and %d workers", n, groups, workers)
	}
	for g := GroupID(1); g <= groups; g++ {
		_ = h.Campaign(g)
	}
	deadline := time.Now().Add(20 * time.Second)
	for g := GroupID(1); g <= groups; g++ {
		for app.count(g) < 5 {
			if time.Now().After(deadline) {
				st, _ := h.Status(g)
				t.Fatalf("group %d applied %d of 5 writes: %+v %v", g, app.count(g), st, h.Stats())
			}
			_ = h.Propose(g, []byte("x"))
			time.Sleep(time.Millisecond)
		}
	}
	if app.bad.Load() {
		t.Fatal("a group was applied by two workers at once")
	}
	if m := app.max.Load(); m > workers {
		t.Fatalf("%d applies ran at once with %d workers", m, workers)
	}
}

// While one round saves, the gathering round takes the groups that
// become ready (up to MaxBatch) instead of saving at once; it saves when
// the other save ends. An idle worker starts no second gathering round.
func TestSchedulerGathersWhileAnotherRoundSaves(t *testing.T) {
	s := newScheduler(3)
	a, b, c, d := &group{id: 1}, &group{id: 2}, &group{id: 3}, &group{id: 4}
	s.enqueue(a)
	r1 := s.tryNext()
	if more := s.gather(len(r1)); more != nil {
		t.Fatalf("nothing saves, yet the round gathered %v", more)
	}
	// r1 saves now. b arrives and starts round 2, which gathers c.
	s.enqueue(b)
	r2 := s.tryNext()
	s.enqueue(c)
	if more := s.gather(len(r2)); len(more) != 1 || more[0] != c {
		t.Fatalf("gathered %v, want c", more)
	}
	// A third worker would wait: round 2 still gathers.
	got := make(chan []*group)
	go func() { got <- s.gather(2) }()
	s.enqueue(d)
	if more := <-got; len(more) != 1 || more[0] != d {
		t.Fatalf("gathered %v, want d (woken by its arrival)", more)
	}
	// Full (MaxBatch 3): round 2 saves even though r1 still does.
	if more := s.gather(3); more != nil {
		t.Fatalf("a full round gathered %v", more)
	}
	s.saved()
	s.saved()
	s.done(r1, []bool{false})
	s.done([]*group{b, c, d}, []bool{false, false, false})
	if s.saving != 0 || s.gathering != 0 || s.pending() != 0 {
		t.Fatalf("saving %d gathering %d pending %d after both rounds", s.saving, s.gathering, s.pending())
	}
}

// A round that is not full waits, while another saves, until either more
// work arrives or that save ends.
func TestSchedulerGatherWaitsForSaveEnd(t *testing.T) {
	s := newScheduler(8)
	s.enqueue(&group{id: 1})
	r1 := s.tryNext()
	_ = s.gather(len(r1)) // r1 saves
	s.enqueue(&group{id: 2})
	r2 := s.tryNext()
	got := make(chan []*group)
	go func() { got <- s.gather(len(r2)) }()
	s.saved() // r1's save ends: r2 saves now
	if more := <-got; more != nil {
		t.Fatalf("gathered %v with nothing queued", more)
	}
	if s.saving != 1 || s.gathering != 0 {
		t.Fatalf("saving %d gathering %d, want r2 saving", s.saving, s.gathering)
	}
}

// With a save interval, a round that follows a save of several groups too
// soon waits out the interval and takes what is queued; after a save of
// one group it saves at once.
func TestSchedulerPacesSavesAfterFullRounds(t *testing.T) {
	s := newScheduler(8)
	s.minInterval = 20 * time.Millisecond
	s.enqueue(&group{id: 1})
	r := s.tryNext()
	s.lastSave, s.lastGroups = time.Now(), 2
	start := time.Now()
	more := s.gather(len(r))
	if len(more) != 0 || time.Since(start) < s.minInterval {
		t.Fatalf("gathered %v after %v: want nothing, after the interval", more, time.Since(start))
	}
	s.saved()
	s.done(r, []bool{false})

	s.enqueue(&group{id: 2})
	r = s.tryNext()
	s.lastSave, s.lastGroups = time.Now(), 2
	late := &group{id: 3}
	s.enqueue(late) // arrives within the interval
	if more := s.gather(len(r)); len(more) != 1 || more[0] != late {
		t.Fatalf("gathered %v, want the group queued within the interval", more)
	}
	if more := s.gather(2); more != nil {
		t.Fatalf("gathered %v after the interval", more)
	}
	s.saved()

	s.enqueue(&group{id: 4})
	r = s.tryNext()
	s.lastSave, s.lastGroups = time.Now(), 1
	s.enqueue(&group{id: 5})
	if more := s.gather(len(r)); more != nil {
		t.Fatalf("paced after a round of one group: gathered %v", more)
	}
}
