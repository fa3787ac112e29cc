package multiraft

import "testing"

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
