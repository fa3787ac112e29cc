package multiraft

import (
	"testing"
	"time"
)

// failoverTicks elects host 1 for a group of three hosts, lets the group
// quiesce (or keeps it busy), cuts host 1 off, has hosts 2 and 3 hear of it
// as their transports would (PeerUnreachable), and counts the ticks until
// one of them leads.
func failoverTicks(t *testing.T, fast, quiesced bool) int {
	c := newManualCluster(t, 3, func(cfg *HostConfig) {
		cfg.ElectionTick, cfg.HeartbeatTick, cfg.PingTicks = 10, 1, 1
		cfg.FastFailover = fast
	})
	c.createGroup(1)
	c.elect(1, 1)
	for i := 0; i < 3*10; i++ {
		if i == 0 || !quiesced {
			c.propose(1, 1, "x")
		}
		c.tick(1)
	}
	if c.allQuiesced(1) != quiesced {
		if !quiesced {
			t.Fatal("the group quiesced: the test needs it awake")
		}
		t.Fatalf("the group did not quiesce: %s", c.describe(1))
	}
	c.net.Cut(1, true)
	c.ids = []HostID{2, 3}
	c.hosts[2].PeerUnreachable(1)
	c.hosts[3].PeerUnreachable(1)
	c.settle()
	for n := 1; n <= 100; n++ {
		c.tick(1)
		if l := c.leader(1); l == 2 || l == 3 {
			return n
		}
	}
	t.Fatalf("no new leader 100 ticks after host 1 was cut off: %s", c.describe(1))
	return 0
}

// With FastFailover, the followers of a leader whose host is reported
// unreachable elect a new leader at the lease's end or a tick after it
// (ElectionTick+rank ticks of silence; host 2 ranks first), whether the group was quiesced
// (no HostTimeoutTicks wait for the host to count as failed) or awake.
// Without it, a quiesced group waits for the host timeout and then a
// random election timeout.
func TestFastFailoverElectsAfterTheLease(t *testing.T) {
	const electionTick = 10
	for _, quiesced := range []bool{true, false} {
		fast := failoverTicks(t, true, quiesced)
		if fast > electionTick+1 {
			t.Errorf("quiesced=%v: a new leader after %d ticks with FastFailover, want at most %d", quiesced, fast, electionTick+1)
		}
		if quiesced {
			slow := failoverTicks(t, false, quiesced)
			if slow <= 2*electionTick {
				t.Errorf("without FastFailover a quiesced group elected after %d ticks, before the host timeout", slow)
			}
			t.Logf("quiesced group: new leader after %d ticks with FastFailover, %d without", fast, slow)
		}
	}
}

// NetTransport reports a peer host whose process goes away: its inbound
// stream ends, and with FastFailover the host counts the peer as failed at
// once, with no tick (HostTimeoutTicks would take two election timeouts).
func TestNetTransportReportsALostPeer(t *testing.T) {
	nets := newNetTransports(t, 3, nil)
	c := newManualCluster(t, 3, func(cfg *HostConfig) {
		cfg.FastFailover = true
		cfg.Transport = nets[cfg.ID]
	})
	for id, h := range c.hosts {
		nets[id].Serve(h)
	}
	// Host 1's pings open its stream to host 2.
	inbound := func(nt *NetTransport) int {
		nt.mu.Lock()
		defer nt.mu.Unlock()
		return len(nt.inbound)
	}
	deadline := time.Now().Add(30 * time.Second)
	for inbound(nets[2]) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("host 1 never opened a stream to host 2")
		}
		c.hosts[1].Tick()
		time.Sleep(10 * time.Millisecond)
	}
	if !c.hosts[2].PeerAlive(1) {
		t.Fatal("host 2 counts host 1 as failed before it went away")
	}
	_ = nets[1].Close()
	for c.hosts[2].PeerAlive(1) {
		if time.Now().After(deadline) {
			t.Fatal("host 2 still counts host 1 alive after its transport closed")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if !c.hosts[2].PeerAlive(3) {
		t.Error("host 2 counts host 3 as failed too")
	}
}
