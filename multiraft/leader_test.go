package multiraft

import (
	"errors"
	"testing"
)

// Host.Leader reports what Status reports as the leader, on every host,
// before an election, after one and after a transfer; an unknown group
// is an error.
func TestLeaderMatchesStatus(t *testing.T) {
	c := newManualCluster(t, 3, func(cfg *HostConfig) { cfg.DisableQuiescence = true })
	c.createGroup(1)
	c.settle()
	check := func(want HostID) {
		t.Helper()
		for _, id := range c.ids {
			got, err := c.hosts[id].Leader(1)
			if err != nil {
				t.Fatal(err)
			}
			if st := c.status(id, 1); got != st.Lead || got != want {
				t.Fatalf("host %d: Leader %d, Status().Lead %d, want %d", id, got, st.Lead, want)
			}
		}
	}
	check(0)
	c.elect(1, 2)
	c.tick(1) // the followers learn the leader from its heartbeats
	check(2)
	if err := c.hosts[2].TransferLeader(1, 3); err != nil {
		t.Fatal(err)
	}
	c.settle()
	c.tick(1)
	check(3)
	if _, err := c.hosts[1].Leader(99); !errors.Is(err, ErrNoGroup) {
		t.Fatalf("Leader of an unknown group: %v, want ErrNoGroup", err)
	}
}
