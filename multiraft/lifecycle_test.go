package multiraft

import (
	"errors"
	"testing"

	"github.com/raftkit/raft/raftpb"
)

// Groups come and go at runtime: created with their members, written,
// removed (their storage deleted, their messages dropped), re-created.
func TestGroupLifecycle(t *testing.T) {
	c := newManualCluster(t, 3, announceAtOnce)
	c.createGroup(1)
	c.createGroup(2, 1, 2) // a group on two of the three hosts
	c.settle()
	c.elect(1, 1)
	c.elect(2, 2)
	c.propose(1, 1, "a")
	c.propose(2, 2, "b")
	c.settle()
	if c.apps[3].count(1) != 1 || c.apps[1].count(2) != 1 || c.apps[2].count(2) != 1 {
		t.Fatalf("writes not applied: %s / %s", c.describe(1), c.describe(2))
	}
	if _, err := c.hosts[3].Status(2); !errors.Is(err, ErrNoGroup) {
		t.Fatalf("host 3 runs group 2: %v", err)
	}
	if err := c.hosts[1].CreateGroup(GroupConfig{ID: 1, Members: c.ids}); !errors.Is(err, ErrGroupExists) {
		t.Fatalf("creating group 1 twice: %v", err)
	}

	for _, id := range c.ids {
		if err := c.hosts[id].RemoveGroup(1); err != nil {
			t.Fatal(err)
		}
	}
	c.settle()
	for _, id := range c.ids {
		if _, err := c.hosts[id].Status(1); !errors.Is(err, ErrNoGroup) {
			t.Fatalf("host %d still runs group 1: %v", id, err)
		}
		c.store[id].mu.Lock()
		_, kept := c.store[id].groups[1]
		c.store[id].mu.Unlock()
		if kept {
			t.Fatalf("host %d kept group 1's storage", id)
		}
	}
	if err := c.hosts[1].Propose(1, []byte("x")); !errors.Is(err, ErrNoGroup) {
		t.Fatalf("proposing to a removed group: %v", err)
	}
	dropped := c.hosts[2].Stats().ItemsDropped
	c.net.Endpoint(1).Send(2, Batch{From: 1, Items: []Item{{Group: 1, Kind: KindRaft,
		Msg: raftpb.Message{Type: raftpb.MsgHeartbeat, From: 1, To: 2, Term: 9}}}})
	if c.hosts[2].Stats().ItemsDropped != dropped+1 {
		t.Fatal("a message for a removed group was not dropped")
	}

	// The ID can be used again, for a fresh group.
	c.createGroup(1)
	c.settle()
	c.elect(1, 3)
	c.propose(3, 1, "again")
	c.settle()
	if c.apps[1].count(1) != 2 { // the app's record survives; the group's log restarted
		t.Fatalf("re-created group did not apply: %s", c.describe(1))
	}
	// Group 2 was untouched by all this.
	if st := c.status(2, 2); st.Lead != 2 {
		t.Fatalf("group 2 disturbed: %s", c.describe(2))
	}
}

// A host added to a running group by a configuration change joins with an
// empty replica and receives the group's log.
func TestGroupJoin(t *testing.T) {
	c := newManualCluster(t, 3, announceAtOnce)
	c.createGroup(1, 1, 2)
	c.settle()
	c.elect(1, 1)
	c.propose(1, 1, "a")
	c.settle()
	if err := c.hosts[3].CreateGroup(GroupConfig{ID: 1, Join: true}); err != nil {
		t.Fatal(err)
	}
	if err := c.hosts[1].ProposeConfChange(1, raftpb.ConfChange{Type: raftpb.ConfChangeAddNode, NodeID: 3}); err != nil {
		t.Fatal(err)
	}
	c.settle()
	c.tick(3)
	c.propose(1, 1, "b")
	c.settle()
	if got := c.apps[3].count(1); got != 2 {
		t.Fatalf("joined host applied %d entries, want 2: %s", got, c.describe(1))
	}
	if m := c.status(3, 1).Members; len(m) != 3 {
		t.Fatalf("joined host sees members %v", m)
	}
}
