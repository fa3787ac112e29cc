package multiraft

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/raftkit/raft/raftpb"
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

// A received frame's item slice goes back to the pool once Host.Receive
// returned and is decoded into again by the next frames (itempool.go), so
// the items a group's inbox holds must be copies: a message waiting for
// its group's round keeps its content while later frames arrive.
func TestReceivedItemsOutliveTheirFrame(t *testing.T) {
	nets := newNetTransports(t, 2, nil)
	c := newManualCluster(t, 2, func(cfg *HostConfig) { cfg.Transport = nets[cfg.ID] })
	for id, h := range c.hosts {
		nets[id].Serve(h)
	}
	c.createGroup(1)
	c.createGroup(2)
	h := c.hosts[2]
	inbox := func(g GroupID) []Item {
		grp := h.groups[g]
		grp.mu.Lock()
		defer grp.mu.Unlock()
		return slices.Clone(grp.in.items)
	}
	item := func(g GroupID, ctx string) Item {
		return Item{Group: g, Kind: KindRaft, Msg: raftpb.Message{Type: raftpb.MsgHeartbeat, From: 1, To: 2,
			Term: 9, Context: []byte(ctx)}}
	}
	waitItems := func(g GroupID, n int) {
		deadline := time.Now().Add(10 * time.Second)
		for len(inbox(g)) < n {
			if time.Now().After(deadline) {
				t.Fatalf("group %d's inbox holds %d items, want %d", g, len(inbox(g)), n)
			}
			time.Sleep(time.Millisecond)
		}
	}
	base := len(inbox(1))
	nets[1].Send(2, Batch{From: 1, Items: []Item{item(1, "first")}})
	waitItems(1, base+1)
	later := len(inbox(2))
	for i := 0; i < 20; i++ {
		nets[1].Send(2, Batch{From: 1, Items: []Item{item(2, fmt.Sprintf("later %d", i))}})
		waitItems(2, later+i+1)
	}
	got := inbox(1)[base]
	if got.Msg.Type != raftpb.MsgHeartbeat || got.Msg.From != 1 || got.Msg.Term != 9 || string(got.Msg.Context) != "first" {
		t.Fatalf("group 1's waiting item became %+v after later frames", got.Msg)
	}
}
