package multiraft

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/raftkit/raft"
	"github.com/raftkit/raft/raftpb"
)

// holdApp is a recApp whose Apply of an entry "hold" blocks until
// release is closed; entered is closed when it starts blocking.
type holdApp struct {
	*recApp
	entered, release chan struct{}
	once             sync.Once
}

func newHoldApp() *holdApp {
	return &holdApp{recApp: newRecApp(), entered: make(chan struct{}), release: make(chan struct{})}
}

func (a *holdApp) Apply(g GroupID, ents []raftpb.Entry) {
	for _, e := range ents {
		if string(e.Data) == "hold" {
			a.once.Do(func() { close(a.entered) })
			<-a.release
		}
	}
	a.recApp.Apply(g, ents)
}

// oneHost starts a host with one worker whose groups 1 and 2 have this
// host as their only member, each led by it.
func oneHost(t *testing.T, app Application, applyQueue int) *Host {
	t.Helper()
	h, err := New(HostConfig{ID: 1, Storage: NewMemStorage(), Transport: NewMemNetwork().Endpoint(1),
		App: app, Workers: 1, ApplyQueue: applyQueue, TickInterval: testTick, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	for g := GroupID(1); g <= 2; g++ {
		if err := h.CreateGroup(GroupConfig{ID: g, Members: []HostID{1}}); err != nil {
			t.Fatal(err)
		}
		_ = h.Campaign(g)
	}
	waitFor(t, 10*time.Second, "both groups led", func() bool {
		for g := GroupID(1); g <= 2; g++ {
			if st, err := h.Status(g); err != nil || st.Lead != 1 {
				return false
			}
		}
		return true
	})
	return h
}

// waitFor polls cond until it holds, failing the test at the deadline.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not reached in %v: %s", d, what)
		}
		time.Sleep(time.Millisecond)
	}
}

// With ApplyQueue, an application stuck applying one group's entries does
// not stop the host's rounds: another group still appends and commits
// (raft's state runs ahead of the application), and its entries reach the
// application, in order, once the stuck apply returns. Without it, the
// worker waits in the stuck apply and group 2 never commits.
func TestSlowApplyDoesNotHoldTheRounds(t *testing.T) {
	app := newHoldApp()
	h := oneHost(t, app, 2)
	var unhold sync.Once
	release := func() { unhold.Do(func() { close(app.release) }) }
	t.Cleanup(release) // before the host's Close, which waits for the stuck apply
	if err := h.Propose(2, []byte("w")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "group 2's first write applied", func() bool { return app.count(2) == 1 })
	st, _ := h.Status(2) // nothing left in flight in group 2
	if err := h.Propose(1, []byte("hold")); err != nil {
		t.Fatal(err)
	}
	<-app.entered
	if err := h.Propose(2, []byte("x")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "group 2 commits while group 1's apply is stuck", func() bool {
		now, _ := h.Status(2)
		return now.Commit > st.Commit && now.Applied == now.Commit
	})
	if n := app.count(2); n != 1 {
		t.Fatalf("group 2 applied %d entries with x behind the stuck apply, want 1 (jobs run in order)", n)
	}
	release()
	waitFor(t, 10*time.Second, "both groups applied", func() bool { return app.count(1) == 1 && app.count(2) == 2 })
}

// jobLog records the calls the applier makes, in order.
type jobLog struct {
	mu    sync.Mutex
	calls []string
	hold  chan struct{} // nil: no wait; else every call waits for it
}

func (l *jobLog) note(s string) {
	if l.hold != nil {
		<-l.hold
	}
	l.mu.Lock()
	l.calls = append(l.calls, s)
	l.mu.Unlock()
}

func (l *jobLog) Apply(g GroupID, ents []raftpb.Entry) {
	l.note(fmt.Sprintf("apply %d:%s", g, ents[0].Data))
}

func (l *jobLog) ReadIndexDone(g GroupID, rs []raft.ReadState) {
	l.note(fmt.Sprintf("read %d:%d", g, rs[0].Index))
}

func (l *jobLog) Restore(GroupID, raftpb.Snapshot) error { return nil }

func (l *jobLog) got() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.calls)
}

func ents(data string) []raftpb.Entry { return []raftpb.Entry{{Data: []byte(data)}} }

// The applier runs jobs one at a time in submission order, each job's
// entries before its reads (applier invariant 1).
func TestApplierRunsJobsInOrder(t *testing.T) {
	log := &jobLog{}
	a := newApplier(2)
	go a.run(log)
	a.submit(applyJob{applies: []GroupEntries{{1, ents("a")}, {2, ents("b")}},
		reads: []groupReads{{1, []raft.ReadState{{Index: 7}}}}})
	a.submit(applyJob{applies: []GroupEntries{{1, ents("c")}}})
	a.close()
	want := []string{"apply 1:a", "apply 2:b", "read 1:7", "apply 1:c"}
	if got := log.got(); !slices.Equal(got, want) {
		t.Fatalf("calls %v, want %v", got, want)
	}
}

// drain returns only once the jobs submitted before it ran (invariant 3:
// Restore never overtakes them), and submit blocks once depth jobs wait
// (invariant 4).
func TestApplierDrainAndBackPressure(t *testing.T) {
	log := &jobLog{hold: make(chan struct{})}
	a := newApplier(1)
	go a.run(log)
	a.submit(applyJob{applies: []GroupEntries{{1, ents("a")}}}) // taken by run, held
	a.submit(applyJob{applies: []GroupEntries{{1, ents("b")}}}) // waits in the queue
	third := make(chan struct{})
	go func() {
		a.submit(applyJob{applies: []GroupEntries{{1, ents("c")}}})
		close(third)
	}()
	drained := make(chan struct{})
	go func() {
		<-third
		a.drain()
		close(drained)
	}()
	// Let the held call and the queue settle; the assertions below hold
	// whatever the timing, since nothing can finish before hold closes.
	time.Sleep(20 * time.Millisecond)
	select {
	case <-third:
		t.Fatal("a third job was queued while one ran and one waited (depth 1)")
	case <-drained:
		t.Fatal("drain returned while jobs were held")
	default:
	}
	close(log.hold)
	<-drained
	want := []string{"apply 1:a", "apply 1:b", "apply 1:c"}
	if got := log.got(); !slices.Equal(got, want) {
		t.Fatalf("calls %v, want %v", got, want)
	}
	a.close()
}

// orderApp records, in order, the entries applied and the snapshots
// restored; its Apply of "hold" blocks like holdApp's.
type orderApp struct {
	*holdApp
	mu     sync.Mutex
	events []string
}

func (a *orderApp) Apply(g GroupID, ents []raftpb.Entry) {
	a.holdApp.Apply(g, ents)
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, e := range ents {
		if e.Type == raftpb.EntryNormal && len(e.Data) > 0 {
			a.events = append(a.events, "apply "+string(e.Data))
		}
	}
}

func (a *orderApp) Restore(g GroupID, snap raftpb.Snapshot) error {
	a.mu.Lock()
	a.events = append(a.events, "restore "+string(snap.Data))
	a.mu.Unlock()
	return a.holdApp.Restore(g, snap)
}

func (a *orderApp) got() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.events)
}

// snapSaved is a MemStorage that closes saved when it first saves a
// snapshot.
type snapSaved struct {
	*MemStorage
	saved chan struct{}
	once  sync.Once
}

func (s *snapSaved) SaveBatch(us []GroupUpdate) error {
	err := s.MemStorage.SaveBatch(us)
	for _, u := range us {
		if !raft.IsEmptySnap(u.Snapshot) {
			s.once.Do(func() { close(s.saved) })
		}
	}
	return err
}

// With ApplyQueue, a snapshot is restored only once the applies handed
// over before it are done (applier invariant 3): a member whose
// application is still applying an entry when its group's snapshot
// arrives restores it after that entry, not over it. Without the drain,
// Restore ran on the worker while the apply goroutine still held the
// group.
func TestSnapshotRestoredAfterQueuedApplies(t *testing.T) {
	net := NewMemNetwork()
	app3 := &orderApp{holdApp: newHoldApp()}
	store3 := &snapSaved{MemStorage: NewMemStorage(), saved: make(chan struct{})}
	c := startLive(t, 3, net.Endpoint, func(cfg *HostConfig) {
		cfg.Workers, cfg.ApplyQueue, cfg.DisableQuiescence = 1, 2, true
		if cfg.ID == 3 {
			cfg.App, cfg.Storage = app3, store3
		}
	})
	var unhold sync.Once
	release := func() { unhold.Do(func() { close(app3.release) }) }
	t.Cleanup(release) // before the hosts' Close, which waits for the held apply
	for _, h := range c.hosts {
		net.Attach(h)
		if err := h.CreateGroup(GroupConfig{ID: 1, Members: []HostID{1, 2, 3}}); err != nil {
			t.Fatal(err)
		}
	}
	_ = c.hosts[0].Campaign(1)
	waitFor(t, 20*time.Second, "host 1 leads, as every host sees", func() bool {
		for _, h := range c.hosts {
			if st, err := h.Status(1); err != nil || st.Lead != 1 {
				return false
			}
		}
		return true
	})
	if err := c.hosts[0].Propose(1, []byte("hold")); err != nil {
		t.Fatal(err)
	}
	<-app3.entered // host 3's apply goroutine holds group 1
	net.Cut(3, true)
	for _, d := range []string{"a", "b"} {
		if err := c.hosts[0].Propose(1, []byte(d)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 20*time.Second, "hosts 1 and 2 applied hold, a, b", func() bool {
		return c.apps[0].count(1) == 3 && c.apps[1].count(1) == 3
	})
	for i := range 2 {
		st, err := c.hosts[i].Status(1)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.hosts[i].Compact(1, st.Applied, []byte("snap")); err != nil {
			t.Fatal(err)
		}
	}
	leaderLog, _ := c.hosts[0].cfg.Storage.Open(1)
	waitFor(t, 20*time.Second, "the leader's log compacted", func() bool {
		snap, _ := leaderLog.Snapshot()
		return string(snap.Data) == "snap"
	})
	net.Cut(3, false)
	<-store3.saved // host 3's worker took the snapshot; its Restore is next
	// Restore must wait for the held apply: give it time to run if it
	// does not (it cannot be seen to wait forever).
	time.Sleep(200 * time.Millisecond)
	if ev := app3.got(); len(ev) != 0 {
		t.Fatalf("host 3 %v while its apply of hold was still running", ev)
	}
	release()
	waitFor(t, 20*time.Second, "host 3 restored the snapshot", func() bool { return len(app3.got()) >= 2 })
	if ev := app3.got(); ev[0] != "apply hold" || ev[1] != "restore snap" {
		t.Fatalf("host 3's application saw %v, want apply hold, then restore snap", ev)
	}
}
