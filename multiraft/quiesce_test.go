package multiraft

import (
	"testing"
)

// A group whose leader finds it idle quiesces on every member: nobody
// ticks it and no message for it crosses the network.
func TestQuiesceWhenIdle(t *testing.T) {
	c := newManualCluster(t, 3, nil)
	c.createGroup(1)
	c.settle()
	c.elect(1, 1)
	c.propose(1, 1, "a")
	c.settle()
	c.tick(10)
	if !c.allQuiesced(1) {
		t.Fatalf("not quiesced: %s", c.describe(1))
	}
	for _, id := range c.ids {
		if got := c.apps[id].count(1); got != 1 {
			t.Fatalf("host %d applied %d entries, want 1", id, got)
		}
	}
	before := c.hosts[1].Stats().ItemsOut + c.hosts[2].Stats().ItemsOut + c.hosts[3].Stats().ItemsOut
	c.tick(50)
	after := c.hosts[1].Stats().ItemsOut + c.hosts[2].Stats().ItemsOut + c.hosts[3].Stats().ItemsOut
	if after != before {
		t.Fatalf("a quiesced group sent %d messages in 50 ticks", after-before)
	}
	if c.hosts[1].Stats().Awake != 0 {
		t.Fatalf("leader still ticks %d groups", c.hosts[1].Stats().Awake)
	}
}
