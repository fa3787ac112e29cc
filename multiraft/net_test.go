package multiraft

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/raftkit/raft/transport"
)

// Groups on three hosts over loopback TCP: one batch stream per ordered
// pair of hosts carries every group's messages, frames carry many groups,
// and every group commits.
func TestManyGroupsOverTCP(t *testing.T) {
	const groups = 100
	nets := newNetTransports(t, 3, nil)
	c := startLive(t, 3, func(id HostID) Transport { return nets[id] }, nil)
	for _, h := range c.hosts {
		nets[h.ID()].Serve(h)
	}
	c.createGroups(t, groups)
	c.writeAll(t, groups, 2, 120*time.Second) // a failure guard: see TestManyGroupsInMemory
	var items uint64
	for _, h := range c.hosts {
		items += h.Stats().ItemsOut
		nt := nets[h.ID()]
		nt.mu.Lock()
		streams := len(nt.inbound)
		nt.mu.Unlock()
		if streams != 2 {
			t.Fatalf("host %d has %d inbound streams, want one per peer host", h.ID(), streams)
		}
	}
	var frames uint64
	for _, nt := range nets {
		f, _, _ := nt.Traffic()
		frames += f
	}
	if frames == 0 || items < 2*frames {
		t.Fatalf("%d group messages in %d frames: frames do not carry several groups", items, frames)
	}
	t.Logf("%d group messages in %d frames", items, frames)
}

// The batch stream's handshake refuses another cluster and unknown hosts.
func TestBatchStreamHandshake(t *testing.T) {
	nt, err := NewNetTransport(NetConfig{ListenAddr: "127.0.0.1:0",
		Stream: transport.BatchStreamConfig{ClusterID: 7, ID: 1}})
	if err != nil {
		t.Fatal(err)
	}
	defer nt.Close()
	nt.AddPeer(2, "127.0.0.1:1") // known, never reachable
	ctx := context.Background()
	addr := nt.Addr().String()
	if _, err := transport.DialBatchStream(ctx, transport.BatchStreamConfig{ClusterID: 8, ID: 2}, 1, addr); !errors.Is(err, transport.ErrClusterIDMismatch) {
		t.Fatalf("other cluster: %v", err)
	}
	if _, err := transport.DialBatchStream(ctx, transport.BatchStreamConfig{ClusterID: 7, ID: 3}, 1, addr); !errors.Is(err, transport.ErrUnknownMember) {
		t.Fatalf("unknown host: %v", err)
	}
	conn, err := transport.DialBatchStream(ctx, transport.BatchStreamConfig{ClusterID: 7, ID: 2}, 1, addr)
	if err != nil {
		t.Fatalf("known host refused: %v", err)
	}
	_ = conn.Close()
}

// newNetTransports starts n NetTransports on loopback, configured by cfg
// for host id (ClusterID 7), each knowing the others as peers, closed
// when the test ends.
func newNetTransports(t testing.TB, n int, cfg func(id HostID) NetConfig) map[HostID]*NetTransport {
	nets := map[HostID]*NetTransport{}
	for id := HostID(1); id <= HostID(n); id++ {
		c := NetConfig{}
		if cfg != nil {
			c = cfg(id)
		}
		c.ListenAddr = "127.0.0.1:0"
		c.Stream.ClusterID, c.Stream.ID = 7, id
		nt, err := NewNetTransport(c)
		if err != nil {
			t.Fatal(err)
		}
		nets[id] = nt
		t.Cleanup(func() { _ = nt.Close() })
	}
	for id, nt := range nets {
		for peer, other := range nets {
			if peer != id {
				nt.AddPeer(peer, other.Addr().String())
			}
		}
	}
	return nets
}
