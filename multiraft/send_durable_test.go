package multiraft

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/raftkit/raft/raftpb"
)

// gateTransport passes batches through to next, but while closed drops
// the commit announcements (appends without entries) and heartbeats sent
// to one peer: losses raft tolerates, which leave that peer to learn of
// new commits from the next append with entries.
type gateTransport struct {
	next   Transport
	to     HostID
	closed atomic.Bool
}

func (g *gateTransport) Send(to HostID, b Batch) {
	if g.closed.Load() && to == g.to {
		kept := b.Items[:0:0]
		for _, it := range b.Items {
			if it.Kind == KindRaft && (it.Msg.Type == raftpb.MsgHeartbeat ||
				it.Msg.Type == raftpb.MsgApp && len(it.Msg.Entries) == 0) {
				continue
			}
			kept = append(kept, it)
		}
		b.Items, b.Heartbeats = kept, nil
	}
	g.next.Send(to, b)
}

// A follower acknowledges the entries its round saved as soon as the save
// returns, while the round still applies entries that were durable before
// it (applyDurable's goroutine): the leader's commit does not wait for
// the follower's apply. Here the follower's apply of "hold" blocks; the
// append that tells it "hold" is committed also carries "y", and the
// leader commits "y" with the follower's acknowledgement while that apply
// is still stuck. With the acknowledgement sent after the apply, "y"
// never commits until the apply returns.
func TestFollowerAcksBeforeItsApplyEnds(t *testing.T) {
	net := NewMemNetwork()
	gate := &gateTransport{next: net.Endpoint(1), to: 2}
	follower := newHoldApp()
	var unhold sync.Once
	release := func() { unhold.Do(func() { close(follower.release) }) }
	var hosts [2]*Host
	for i, app := range []Application{newRecApp(), follower} {
		id := HostID(i + 1)
		var tr Transport = net.Endpoint(id)
		if id == 1 {
			tr = gate
		}
		h, err := New(HostConfig{ID: id, Peers: []HostID{3 - id}, Storage: NewMemStorage(), Transport: tr,
			App: app, Workers: 1, TickInterval: testTick, Seed: int64(id), DisableQuiescence: true,
			ElectionTick: 100}) // no election while the gate drops heartbeats
		if err != nil {
			t.Fatal(err)
		}
		net.Attach(h)
		hosts[i] = h
		if err := h.CreateGroup(GroupConfig{ID: 1, Members: []HostID{1, 2}}); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		release() // before Close, which waits for the stuck apply
		for _, h := range hosts {
			_ = h.Close()
		}
	})
	leader := hosts[0]
	_ = leader.Campaign(1)
	waitFor(t, 10*time.Second, "host 1 leads", func() bool { st, _ := leader.Status(1); return st.Lead == 1 })
	status := func() GroupStatus { st, _ := leader.Status(1); return st }

	waitFor(t, 10*time.Second, "the follower applied all", func() bool {
		st, _ := hosts[1].Status(1)
		return st.Applied == status().Commit
	})

	gate.closed.Store(true) // the follower hears of hold's commit only with y
	before := status().Commit
	if err := leader.Propose(1, []byte("hold")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the leader commits hold", func() bool { return status().Commit > before })
	hold := status().Commit
	if err := leader.Propose(1, []byte("y")); err != nil {
		t.Fatal(err)
	}
	<-follower.entered
	waitFor(t, 10*time.Second, "the leader commits y while the follower's apply of hold is stuck",
		func() bool { return status().Commit > hold })
	gate.closed.Store(false)
	release()
}
