package multiraft

import "testing"

// PeerHeardWithin tells a peer heard from in the last few ticks from one
// that fell silent but still counts as alive: a silent peer stays alive for
// HostTimeoutTicks, and only PeerHeardWithin sees it stop at once.
func TestPeerHeardWithinSeesSilenceBeforePeerAlive(t *testing.T) {
	c := newManualCluster(t, 3, func(cfg *HostConfig) {
		cfg.ElectionTick, cfg.HeartbeatTick, cfg.PingTicks = 10, 1, 1
	})
	c.tick(3)
	h := c.hosts[2]
	if !h.PeerHeardWithin(1, 1) || !h.PeerAlive(1) {
		t.Fatal("host 2 has not heard host 1's pings")
	}
	c.net.Cut(1, true)
	c.ids = []HostID{2, 3} // host 1 is gone: stop driving it
	c.tick(3)
	if h.PeerHeardWithin(1, 2) {
		t.Error("host 2 heard host 1 within 2 ticks, 3 ticks after host 1 went silent")
	}
	if !h.PeerHeardWithin(1, 5) {
		t.Error("host 2 did not hear host 1 within 5 ticks, 3 ticks after host 1 went silent")
	}
	if !h.PeerAlive(1) {
		t.Error("host 2 counts host 1 as failed before HostTimeoutTicks")
	}
	if !h.PeerHeardWithin(3, 1) {
		t.Error("host 2 stopped hearing host 3, which still pings it")
	}
	if h.PeerHeardWithin(99, 100) {
		t.Error("a host that is not tracked counts as heard from")
	}
}
