package multiraft

import (
	"testing"

	"github.com/raftkit/raft/raftpb"
)

// With heartbeats every other tick, an append to a follower spares it the
// heartbeat due within the next two ticks (the heartbeat period), not only
// within the next tick; heartbeats come back once a period passes without
// appends.
func TestNoHeartbeatWithinAPeriodOfAnAppend(t *testing.T) {
	c, logs := newLoggedCluster(t, 3, false, func(cfg *HostConfig) { cfg.HeartbeatTick = 2 })
	c.createGroup(1)
	c.elect(1, 1)
	tick := func() int {
		logs[1].take()
		for _, id := range c.ids {
			c.hosts[id].Tick()
		}
		c.settle()
		return count(logs[1].take(), raftpb.MsgHeartbeat)
	}
	beats := 0 // until the first heartbeat tick after the election's appends
	for i := 0; i < 10 && beats == 0; i++ {
		beats = tick()
	}
	if beats != 2 {
		t.Fatalf("idle leader sent %d heartbeats on its heartbeat tick, want one per follower", beats)
	}
	c.propose(1, 1, "a") // right after a heartbeat tick
	c.settle()
	if n := tick() + tick(); n != 0 {
		t.Fatalf("%d heartbeats within a heartbeat period of an append, want none", n)
	}
	if n := tick() + tick(); n != 2 {
		t.Fatalf("%d heartbeats in the period after, want one per follower", n)
	}
	for _, id := range c.ids {
		if n := c.apps[id].count(1); n != 1 {
			t.Fatalf("host %d applied %d writes, want 1", id, n)
		}
	}
}
