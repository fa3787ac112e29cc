package multiraft

import (
	"testing"

	"github.com/raftkit/raft/raftpb"
)

// gatedCluster is a manual cluster whose hosts' saves can be held and
// whose sends are logged.
type gatedCluster struct {
	*manualCluster
	gates map[HostID]*gateStorage
	logs  map[HostID]*sendLog
}

func newGatedCluster(t *testing.T) *gatedCluster {
	gc := &gatedCluster{gates: map[HostID]*gateStorage{}, logs: map[HostID]*sendLog{}}
	gc.manualCluster = newManualCluster(t, 3, func(cfg *HostConfig) {
		cfg.AnnounceCommitsAtOnce = true
		gc.gates[cfg.ID] = &gateStorage{MemStorage: cfg.Storage.(*MemStorage)}
		gc.logs[cfg.ID] = &sendLog{inner: cfg.Transport}
		cfg.Storage, cfg.Transport = gc.gates[cfg.ID], gc.logs[cfg.ID]
		cfg.DisableQuiescence = true
	})
	gc.createGroup(1)
	gc.elect(1, 1)
	gc.propose(1, 1, "warm")
	gc.settle()
	return gc
}

// runGated runs host id's pending work with its save held, calls during
// while the save is held, and returns once the round is done.
func (gc *gatedCluster) runGated(id HostID, during func()) {
	g := gc.gates[id]
	g.close()
	done := make(chan error)
	go func() { done <- gc.hosts[id].RunPending() }()
	<-g.entered
	during()
	close(g.release)
	if err := <-done; err != nil {
		gc.t.Fatal(err)
	}
}

func (gc *gatedCluster) run(id HostID) {
	if err := gc.hosts[id].RunPending(); err != nil {
		gc.t.Fatal(err)
	}
}

// An entry the leader saved in an earlier round and learns committed now
// is applied during the round's save, not after it: its apply does not
// wait for an fsync that cannot change it.
func TestDurableCommittedEntriesApplyBeforeTheSave(t *testing.T) {
	gc := newGatedCluster(t)
	gc.propose(1, 1, "x")
	gc.run(1) // the leader saves x and sends it
	gc.run(2)
	gc.run(3) // the followers acknowledge it
	during := -1
	gc.runGated(1, func() { during = gc.apps[1].count(1) })
	if during != 2 {
		t.Fatalf("leader had applied %d writes while saving the commit of x, want 2 (warm, x)", during)
	}
	gc.settle()
	for _, id := range gc.ids {
		if n := gc.apps[id].count(1); n != 2 {
			t.Fatalf("host %d applied %d writes, want 2", id, n)
		}
	}
}

// A follower that receives an entry and learns it committed in one round
// applies it only once the round's save made it durable.
func TestEntriesAppendedInTheRoundApplyAfterTheSave(t *testing.T) {
	gc := newGatedCluster(t)
	gc.propose(1, 1, "y")
	gc.run(1)
	gc.run(2)
	gc.run(1) // committed with host 2's acknowledgement; host 3 has not run
	during := -1
	gc.runGated(3, func() { during = gc.apps[3].count(1) })
	if during != 1 {
		t.Fatalf("follower had applied %d writes while saving y, want 1 (warm only)", during)
	}
	if n := gc.apps[3].count(1); n != 2 {
		t.Fatalf("follower applied %d writes after its save, want 2", n)
	}
}

// sendWatch is an Application that records, at each Apply, how many
// acknowledgements its host had sent.
type sendWatch struct {
	*recApp
	log     *sendLog
	ackedAt []int
}

func (w *sendWatch) Apply(g GroupID, ents []raftpb.Entry) {
	w.log.mu.Lock()
	w.ackedAt = append(w.ackedAt, count(w.log.sent, raftpb.MsgAppResp))
	w.log.mu.Unlock()
	w.recApp.Apply(g, ents)
}

// A follower's acknowledgement leaves as soon as its save returns, before
// it applies what the round committed: the leader's commit (and its
// client's answer) does not wait for the follower's apply.
func TestAcknowledgementsLeaveBeforeTheApply(t *testing.T) {
	var watch *sendWatch
	c := newManualCluster(t, 3, func(cfg *HostConfig) {
		cfg.AnnounceCommitsAtOnce = true
		cfg.DisableQuiescence = true
		if cfg.ID == 3 {
			log := &sendLog{inner: cfg.Transport}
			watch = &sendWatch{recApp: newRecApp(), log: log}
			cfg.Transport, cfg.App = log, watch
		}
	})
	c.createGroup(1)
	c.elect(1, 1)
	c.settle()
	run := func(id HostID) {
		if err := c.hosts[id].RunPending(); err != nil {
			t.Fatal(err)
		}
	}
	c.propose(1, 1, "y")
	run(1)
	run(2)
	run(1) // y committed; host 3 gets it and its commit in one round
	watch.log.take()
	watch.ackedAt = nil
	run(3)
	if len(watch.ackedAt) != 1 || watch.ackedAt[0] != 1 {
		t.Fatalf("acknowledgements sent at each apply: %v, want [1] (the ack leaves before the apply)", watch.ackedAt)
	}
	c.settle()
	if n := watch.count(1); n != 1 {
		t.Fatalf("host 3 applied %d writes, want 1", n)
	}
}
