package multiraft

import (
	"sync"
	"testing"

	"github.com/raftkit/raft"
	"github.com/raftkit/raft/raftpb"
	"github.com/raftkit/raft/tracker"
)

// dropAckOnce passes batches on but for the first acknowledgement of
// appends after arm, which it removes (a lost message).
type dropAckOnce struct {
	inner Transport
	mu    sync.Mutex
	armed bool
}

func (d *dropAckOnce) arm() {
	d.mu.Lock()
	d.armed = true
	d.mu.Unlock()
}

func (d *dropAckOnce) Send(to HostID, b Batch) {
	d.mu.Lock()
	if d.armed {
		for i, it := range b.Items {
			if it.Kind == KindRaft && it.Msg.Type == raftpb.MsgAppResp && !it.Msg.Reject {
				b.Items = append(b.Items[:i:i], b.Items[i+1:]...)
				d.armed = false
				break
			}
		}
	}
	d.mu.Unlock()
	d.inner.Send(to, b)
}

// matchOf returns the leader's record of how far member's log matches its
// own in group g (manual mode: nothing else touches the group).
func matchOf(t *testing.T, leader *Host, g GroupID, member HostID) uint64 {
	grp, err := leader.group(g)
	if err != nil {
		t.Fatal(err)
	}
	var match uint64
	grp.rn.WithProgress(func(id uint64, _ raft.ProgressType, pr tracker.Progress) {
		if id == uint64(member) {
			match = pr.Match
		}
	})
	return match
}

// A follower acknowledges a write's append once: raft's announcement of
// the new commit index that follows (an append without entries) is
// stepped, and the write applied, but not answered, since the answer
// would repeat the acknowledgement the leader already has.
func TestCommitAnnouncementNotAnswered(t *testing.T) {
	c, logs := newLoggedCluster(t, 3, false, nil)
	c.createGroup(1)
	c.elect(1, 1)
	c.propose(1, 1, "warm")
	c.settle()
	for _, id := range c.ids {
		logs[id].take()
	}
	for i, w := range []string{"a", "b", "c"} {
		c.propose(1, 1, w)
		c.settle()
		if sent := logs[1].take(); count(sent, raftpb.MsgApp) != 4 {
			t.Fatalf("write %d: leader sent %v, want an append and a commit announcement to each follower", i, sent)
		}
		for _, id := range []HostID{2, 3} {
			if sent := logs[id].take(); count(sent, raftpb.MsgAppResp) != 1 {
				t.Fatalf("write %d: follower %d sent %v, want one acknowledgement", i, id, sent)
			}
			if n := c.apps[id].count(1); n != i+2 {
				t.Fatalf("write %d: follower %d applied %d writes, want %d", i, id, n, i+2)
			}
			if m, last := matchOf(t, c.hosts[1], 1, id), c.status(1, 1).Commit; m != last {
				t.Fatalf("write %d: leader has follower %d at %d, want %d", i, id, m, last)
			}
		}
	}
}

// When a follower's acknowledgement is lost, the one it leaves out after
// the commit announcement is not the leader's only way to learn its log:
// the next heartbeat's answer makes the leader append again, and that
// append (no new commit index) is answered. The group then quiesces,
// which needs every member's log known to match.
func TestLostAckRecoveredAfterUnansweredAnnouncement(t *testing.T) {
	drops := map[HostID]*dropAckOnce{}
	c := newManualCluster(t, 3, func(cfg *HostConfig) {
		cfg.AnnounceCommitsAtOnce = true
		drops[cfg.ID] = &dropAckOnce{inner: cfg.Transport}
		cfg.Transport = drops[cfg.ID]
	})
	c.createGroup(1)
	c.elect(1, 1)
	c.propose(1, 1, "warm")
	c.settle()
	drops[2].arm()
	c.propose(1, 1, "x")
	c.settle()
	last := c.status(1, 1).Commit
	if n := c.apps[2].count(1); n != 2 {
		t.Fatalf("follower 2 applied %d writes, want 2 (the commit announcement reached it)", n)
	}
	if m := matchOf(t, c.hosts[1], 1, 2); m >= last {
		t.Fatalf("leader has follower 2 at %d after its acknowledgement was lost, want below %d", m, last)
	}
	for i := 0; i < 30 && !c.allQuiesced(1); i++ {
		c.tick(1)
	}
	if m := matchOf(t, c.hosts[1], 1, 2); m != last {
		t.Fatalf("leader has follower 2 at %d after heartbeats, want %d", m, last)
	}
	if !c.allQuiesced(1) {
		t.Fatalf("group did not quiesce: %s", c.describe(1))
	}
}
