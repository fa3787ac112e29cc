package multiraft

import (
	"testing"

	"github.com/raftkit/raft"
)

// A follower whose leader's host is alive is not scheduled for each tick:
// Tick holds its ticks back until tickDeferLimit of them are due (the
// leader's messages schedule it meanwhile, ticks first). Once the leader's
// host counts as failed, the follower is scheduled for every tick again,
// so that its election timer runs on time.
func TestTickDefersFollowersOfALiveLeader(t *testing.T) {
	c := newManualCluster(t, 3, func(cfg *HostConfig) {
		// Host failure noticed well within an election timeout, before
		// the follower campaigns.
		cfg.ElectionTick, cfg.HeartbeatTick, cfg.HostTimeoutTicks = 10, 1, 6
		cfg.DisableQuiescence = true
	})
	c.createGroup(1)
	c.elect(1, 1)
	c.settle()
	h := c.hosts[2]
	const limit = 5 // half the election timeout
	for i := 1; i < limit; i++ {
		h.Tick()
		if n := h.sched.pending(); n != 0 {
			t.Fatalf("tick %d: follower of a live leader scheduled (%d pending), want its tick held back", i, n)
		}
	}
	h.Tick()
	if n := h.sched.pending(); n != 1 {
		t.Fatalf("after %d ticks: %d groups pending, want the follower scheduled with its held ticks", limit, n)
	}
	if err := h.RunPending(); err != nil {
		t.Fatal(err)
	}

	c.net.Cut(1, true)
	for i := 0; h.PeerAlive(1); i++ {
		if i > 10*h.cfg.HostTimeoutTicks {
			t.Fatal("host 2 never counts the silent host 1 as failed")
		}
		h.Tick()
		if err := h.RunPending(); err != nil {
			t.Fatal(err)
		}
	}
	if st := c.status(2, 1); st.Lead != 1 {
		t.Fatalf("follower left leader 1 (lead %d) before its host counted as failed", st.Lead)
	}
	h.Tick()
	if n := h.sched.pending(); n != 1 {
		t.Fatalf("follower of a failed leader: %d groups pending after a tick, want it scheduled", n)
	}
}

// A leader is scheduled every HeartbeatTick ticks, not every tick (its
// heartbeats keep their period), unless its reads are lease-based, whose
// lease a late clock would stretch.
func TestTickDefersLeadersToTheirHeartbeatPeriod(t *testing.T) {
	for _, lease := range []bool{false, true} {
		c := newManualCluster(t, 3, func(cfg *HostConfig) {
			cfg.ElectionTick, cfg.HeartbeatTick = 10, 2
			cfg.DisableQuiescence = true
			if lease {
				cfg.ReadOnlyOption = raft.ReadOnlyLeaseBased
			}
		})
		c.createGroup(1)
		c.elect(1, 1)
		c.tick(4) // the election's appends are older than a heartbeat period
		h := c.hosts[1]
		h.Tick()
		want := 0
		if lease {
			want = 1
		}
		if n := h.sched.pending(); n != want {
			t.Fatalf("lease %v: leader pending %d after one tick, want %d", lease, n, want)
		}
		h.Tick()
		if n := h.sched.pending(); n != 1 {
			t.Fatalf("lease %v: leader pending %d after a heartbeat period, want 1", lease, n)
		}
		before := h.Stats().ItemsOut
		if err := h.RunPending(); err != nil {
			t.Fatal(err)
		}
		if n := h.Stats().ItemsOut - before; n != 2 {
			t.Fatalf("lease %v: leader sent %d items after a heartbeat period's ticks, want a heartbeat per follower", lease, n)
		}
	}
}
