package multiraft

import (
	"sync"
	"testing"

	"github.com/raftkit/raft/raftpb"
)

// gateStorage holds SaveBatch while closed: the test sees what a host
// sent before its save returned.
type gateStorage struct {
	*MemStorage
	mu      sync.Mutex
	closed  bool
	entered chan struct{}
	release chan struct{}
}

func (s *gateStorage) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	s.entered, s.release = make(chan struct{}), make(chan struct{})
}

func (s *gateStorage) SaveBatch(us []GroupUpdate) error {
	s.mu.Lock()
	closed, entered, release := s.closed, s.entered, s.release
	s.closed = false
	s.mu.Unlock()
	if closed {
		close(entered)
		<-release
	}
	return s.MemStorage.SaveBatch(us)
}

// newLoggedCluster is newManualCluster with every host's sends logged
// (logs by host); more, if not nil, adjusts each host's config further.
func newLoggedCluster(t *testing.T, n int, quiesce bool, more func(*HostConfig)) (*manualCluster, map[HostID]*sendLog) {
	logs := map[HostID]*sendLog{}
	c := newManualCluster(t, n, func(cfg *HostConfig) {
		cfg.AnnounceCommitsAtOnce = true
		logs[cfg.ID] = &sendLog{inner: cfg.Transport}
		cfg.Transport = logs[cfg.ID]
		cfg.DisableQuiescence = !quiesce
		if more != nil {
			more(cfg)
		}
	})
	return c, logs
}

// sendLog records the raft messages a host sends, by type.
type sendLog struct {
	inner Transport
	mu    sync.Mutex
	sent  []raftpb.MessageType
}

func (l *sendLog) Send(to HostID, b Batch) {
	l.mu.Lock()
	for _, it := range b.expandHeartbeats(to) {
		l.sent = append(l.sent, it.Msg.Type)
	}
	l.mu.Unlock()
	l.inner.Send(to, b)
}

// take returns and forgets what was sent so far.
func (l *sendLog) take() []raftpb.MessageType {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.sent
	l.sent = nil
	return out
}

func count(ts []raftpb.MessageType, t raftpb.MessageType) int {
	n := 0
	for _, x := range ts {
		if x == t {
			n++
		}
	}
	return n
}

// A leader's appends leave before its own save returns (the thesis's
// parallel leader write), while a follower's acknowledgement waits for
// the save that makes the entries it acknowledges durable.
func TestLeaderAppendsLeaveBeforeSaveAcksAfter(t *testing.T) {
	gates, logs := map[HostID]*gateStorage{}, map[HostID]*sendLog{}
	c := newManualCluster(t, 3, func(cfg *HostConfig) {
		gates[cfg.ID] = &gateStorage{MemStorage: cfg.Storage.(*MemStorage)}
		logs[cfg.ID] = &sendLog{inner: cfg.Transport}
		cfg.Storage, cfg.Transport = gates[cfg.ID], logs[cfg.ID]
		cfg.DisableQuiescence = true
	})
	c.createGroup(1)
	c.elect(1, 1)
	c.propose(1, 1, "warm")
	c.settle()

	runGated := func(id HostID) (before, after []raftpb.MessageType) {
		g := gates[id]
		g.close()
		logs[id].take()
		done := make(chan error)
		go func() { done <- c.hosts[id].RunPending() }()
		<-g.entered
		before = logs[id].take()
		close(g.release)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		return before, logs[id].take()
	}
	c.propose(1, 1, "x")
	before, _ := runGated(1)
	if count(before, raftpb.MsgApp) != 2 {
		t.Fatalf("leader sent %v before its save returned, want an append to each follower", before)
	}
	before, after := runGated(2)
	if count(before, raftpb.MsgAppResp) != 0 || count(after, raftpb.MsgAppResp) != 1 {
		t.Fatalf("follower sent %v before its save, %v after: the ack must wait for the save", before, after)
	}
	c.settle()
	if n := c.apps[1].count(1); n != 2 {
		t.Fatalf("leader applied %d writes, want 2", n)
	}
}

// One round's messages of a group to one peer carry no redundant twin: a
// follower that steps two appends in one round acknowledges once, and a
// leader that steps acknowledgements (a new commit index) and a proposal
// in one round sends each follower one append, carrying both.
func TestRoundSendsNoSupersededMessages(t *testing.T) {
	c, logs := newLoggedCluster(t, 3, false, nil)
	c.createGroup(1)
	c.elect(1, 1)
	run := func(id HostID) []raftpb.MessageType {
		logs[id].take()
		if err := c.hosts[id].RunPending(); err != nil {
			t.Fatal(err)
		}
		return logs[id].take()
	}
	c.propose(1, 1, "a")
	run(1)
	c.propose(1, 1, "b")
	run(1) // two appends wait at each follower
	for _, id := range []HostID{2, 3} {
		if sent := run(id); count(sent, raftpb.MsgAppResp) != 1 {
			t.Fatalf("follower %d sent %v for two appends in one round, want one acknowledgement", id, sent)
		}
	}
	c.propose(1, 1, "c")
	if sent := run(1); count(sent, raftpb.MsgApp) != 2 {
		t.Fatalf("leader sent %v for a commit and a proposal in one round, want one append per follower", sent)
	}
	c.settle()
	for _, id := range c.ids {
		if n := c.apps[id].count(1); n != 3 {
			t.Fatalf("host %d applied %d writes, want 3", id, n)
		}
	}
}

// A leader sends no heartbeat to a follower that answered an append within
// the last AppendSparesTicks ticks (the append did a heartbeat's work), and
// heartbeats again once they passed without appends: a member of an awake
// group hears from its leader at least every half election timeout.
func TestNoHeartbeatRightAfterAppend(t *testing.T) {
	c, logs := newLoggedCluster(t, 3, false, nil)
	c.createGroup(1)
	c.elect(1, 1)
	tick := func() []raftpb.MessageType {
		logs[1].take()
		c.hosts[1].Tick()
		if err := c.hosts[1].RunPending(); err != nil {
			t.Fatal(err)
		}
		return logs[1].take()
	}
	for i := 0; i < 4; i++ { // past the election's appends
		tick()
	}
	if sent := tick(); count(sent, raftpb.MsgHeartbeat) != 2 {
		t.Fatalf("idle leader sent %v on a tick, want a heartbeat to each follower", sent)
	}
	c.propose(1, 1, "a")
	c.settle() // the followers answer the append
	// AppendSparesTicks defaults to ElectionTick/2-HeartbeatTick: 4.
	for i := 1; i <= 4; i++ {
		if sent := tick(); count(sent, raftpb.MsgHeartbeat) != 0 {
			t.Fatalf("tick %d after an append: sent %v, want no heartbeat", i, sent)
		}
	}
	if sent := tick(); count(sent, raftpb.MsgHeartbeat) != 2 {
		t.Fatalf("a tick past the append's spared ticks: sent %v, want heartbeats again", sent)
	}
	c.settle()
	if n := c.apps[2].count(1); n != 1 {
		t.Fatalf("follower applied %d writes, want 1", n)
	}
}

// A woken leader's first round sends each follower its append and no
// heartbeat (the ageing ticks' heartbeats are superseded by the append),
// and a follower answers no quiescing heartbeat it accepts.
func TestQuiesceCycleSendsNoRedundantMessages(t *testing.T) {
	c, logs := newLoggedCluster(t, 3, true, nil)
	c.createGroup(1)
	c.settle()
	c.elect(1, 1)
	c.propose(1, 1, "a")
	c.settle()
	quiesced := false
	for i := 0; i < 20 && !quiesced; i++ {
		for _, id := range c.ids {
			c.hosts[id].Tick()
		}
		for _, id := range c.ids {
			logs[id].take()
			if err := c.hosts[id].RunPending(); err != nil {
				t.Fatal(err)
			}
			sent := logs[id].take()
			if id != 1 && c.status(id, 1).Quiesced {
				quiesced = true
				if n := count(sent, raftpb.MsgHeartbeatResp); n != 0 {
					t.Fatalf("host %d answered the quiescing heartbeat: %v", id, sent)
				}
			}
		}
		c.settle()
	}
	if !c.allQuiesced(1) {
		t.Fatalf("not quiesced: %s", c.describe(1))
	}
	c.propose(1, 1, "b")
	logs[1].take()
	if err := c.hosts[1].RunPending(); err != nil {
		t.Fatal(err)
	}
	if sent := logs[1].take(); count(sent, raftpb.MsgApp) != 2 || count(sent, raftpb.MsgHeartbeat) != 0 {
		t.Fatalf("woken leader sent %v, want one append per follower and no heartbeat", sent)
	}
	c.settle()
	for _, id := range c.ids {
		if n := c.apps[id].count(1); n != 2 {
			t.Fatalf("host %d applied %d writes, want 2", id, n)
		}
	}
}
