package multiraft

import (
	"slices"
	"testing"

	"github.com/raftkit/raft"
	"github.com/raftkit/raft/raftpb"
)

// A leader holds the announcement of a new commit index until its next
// message to the member: the members apply a write with the next write's
// appends, or with the first heartbeat that a recent append does not
// spare, never in rounds of their own. A heartbeat spared by the append
// sends nothing (before 2026-12-04 the announcement went in its place).
// With AnnounceCommitsAtOnce the members apply at once.
func TestCommitAnnouncementWaitsForTheNextMessage(t *testing.T) {
	for _, atOnce := range []bool{false, true} {
		c, logs := newLoggedCluster(t, 3, false, func(cfg *HostConfig) { cfg.AnnounceCommitsAtOnce = atOnce })
		c.createGroup(1)
		c.elect(1, 1)
		c.propose(1, 1, "warm")
		c.settle()
		c.tick(c.announceTicks())
		logs[1].take()

		c.propose(1, 1, "a")
		c.settle()
		c.propose(1, 1, "b")
		c.settle()
		sent := logs[1].take()
		// Two appends per member, none announcing: b's appends carry a's
		// commit.
		wantApps, wantApplied := 4, 2
		if atOnce {
			wantApps, wantApplied = 8, 3 // and an announcement after each
		}
		if got := count(sent, raftpb.MsgApp); got != wantApps {
			t.Errorf("atOnce=%v: leader sent %d appends for two writes, want %d (%v)", atOnce, got, wantApps, sent)
		}
		for _, id := range []HostID{2, 3} {
			if got := c.apps[id].count(1); got != wantApplied {
				t.Fatalf("atOnce=%v: before the ticks host %d applied %d writes, want %d; %s",
					atOnce, id, got, wantApplied, c.describe(1))
			}
		}
		if atOnce {
			continue
		}

		// The heartbeats of the spared ticks are not sent, nor is the
		// announcement.
		spared := c.hosts[1].cfg.AppendSparesTicks
		c.tick(spared)
		if sent := logs[1].take(); count(sent, raftpb.MsgApp) != 0 || count(sent, raftpb.MsgHeartbeat) != 0 {
			t.Errorf("the leader's %d spared ticks sent %v, want nothing", spared, sent)
		}
		for _, id := range []HostID{2, 3} {
			if got := c.apps[id].count(1); got != 2 {
				t.Fatalf("after the spared ticks host %d applied %d writes, want 2; %s", id, got, c.describe(1))
			}
		}
		// The first heartbeat not spared carries the commit index.
		c.tick(c.announceTicks() - spared)
		sent = logs[1].take()
		if count(sent, raftpb.MsgApp) != 0 || count(sent, raftpb.MsgHeartbeat) != 2 {
			t.Errorf("the leader's next heartbeat tick sent %v, want one heartbeat per member and no append", sent)
		}
		for _, id := range c.ids {
			if got := c.apps[id].count(1); got != 3 {
				t.Fatalf("after the heartbeat host %d applied %d writes, want 3; %s", id, got, c.describe(1))
			}
		}
	}
}

// A held announcement leaves with the leader's next message of its group
// to the member: a follower's lease read is answered by the leader at
// once, with the commit index as the read index, and the follower,
// whose read waits until it applied that far, gets the announcement in
// the same batch instead of a tick later.
func TestHeldAnnouncementRidesWithTheReadAnswer(t *testing.T) {
	c := newManualCluster(t, 3, func(cfg *HostConfig) {
		cfg.CheckQuorum = true
		cfg.ReadOnlyOption = raft.ReadOnlyLeaseBased
		cfg.DisableQuiescence = true
	})
	c.createGroup(1)
	c.elect(1, 1)
	c.propose(1, 1, "a")
	c.settle()
	if got := c.apps[2].count(1); got != 0 {
		t.Fatalf("host 2 applied %d writes before the read, want 0 (announcement held)", got)
	}
	if err := c.hosts[2].ReadIndex(1, []byte("r")); err != nil {
		t.Fatal(err)
	}
	c.settle()
	reads := c.apps[2].reads[1]
	if len(reads) != 1 {
		t.Fatalf("host 2 got read states %v, want one", reads)
	}
	st := c.status(2, 1)
	if st.Commit < reads[0].Index || c.apps[2].count(1) != 1 {
		t.Fatalf("host 2 answered a read at index %d but applied %d writes; %s", reads[0].Index,
			c.apps[2].count(1), c.describe(1))
	}
}

// Held announcements are dropped when the replica stops leading (the
// members refuse its term's messages once they know a newer one), when
// it quiesces (the quiescing heartbeats carry the commit index), and an
// append of the same term to the member supersedes its announcement,
// while any other message carries it along.
func TestHeldAnnouncementsEnd(t *testing.T) {
	ann := func(to HostID, commit uint64) raftpb.Message {
		return raftpb.Message{Type: raftpb.MsgApp, From: 1, To: to, Term: 2, Commit: commit}
	}
	g := &group{id: 1, leading: true}
	o := newOutbox(1)
	o.holdCommits, o.all, o.coalesce = true, true, true
	o.addMessages(g, []raftpb.Message{ann(2, 5), ann(3, 5)}, true, 0)
	o.addMessages(g, []raftpb.Message{ann(2, 6)}, true, 0)
	if len(o.order) != 0 || len(g.held) != 2 {
		t.Fatalf("announcements not held: batches to %v, held %v", o.order, g.held)
	}
	if m, _ := g.takeHeld(2); m.Commit != 6 {
		t.Fatalf("held %v for host 2, want the latest announcement (commit 6)", m)
	}
	g.hold(&raftpb.Message{Type: raftpb.MsgApp, From: 1, To: 2, Term: 2, Commit: 6})

	app := ann(2, 7)
	app.Entries = []raftpb.Entry{{Index: 7, Term: 2}}
	resp := raftpb.Message{Type: raftpb.MsgReadIndexResp, From: 1, To: 3, Term: 2, Index: 6}
	o.addMessages(g, []raftpb.Message{app, resp}, true, 0)
	if len(g.held) != 0 {
		t.Fatalf("still held after messages to both members: %v", g.held)
	}
	if items := o.batches[2].Items; len(items) != 1 || len(items[0].Msg.Entries) != 1 {
		t.Fatalf("to host 2: %v, want only the append that supersedes the announcement", items)
	}
	if items := o.batches[3].Items; len(items) != 2 || items[0].Msg.Type != raftpb.MsgApp ||
		items[1].Msg.Type != raftpb.MsgReadIndexResp {
		t.Fatalf("to host 3: %v, want the held announcement, then the read answer", items)
	}

	// A heartbeat carrying the commit index supersedes the announcement;
	// one with an older commit index (a member behind) carries it along.
	o.reset()
	g.hold(&raftpb.Message{Type: raftpb.MsgApp, From: 1, To: 2, Term: 2, Commit: 7})
	g.hold(&raftpb.Message{Type: raftpb.MsgApp, From: 1, To: 3, Term: 2, Commit: 7})
	o.addMessages(g, []raftpb.Message{
		{Type: raftpb.MsgHeartbeat, From: 1, To: 2, Term: 2, Commit: 7},
		{Type: raftpb.MsgHeartbeat, From: 1, To: 3, Term: 2, Commit: 5},
	}, true, 0)
	if len(g.held) != 0 || len(o.batches[2].Items) != 0 || len(o.batches[2].Heartbeats) != 1 ||
		len(o.batches[3].Items) != 1 || len(o.batches[3].Heartbeats) != 1 {
		t.Fatalf("heartbeats: held %v, to 2 %+v, to 3 %+v", g.held, o.batches[2], o.batches[3])
	}

	// A heartbeat a recent append spares sends nothing: the announcement
	// stays held (the member answers only appends with entries, each
	// carrying the commit index of the writes before it); the first
	// heartbeat not spared carries it.
	o.reset()
	o.spareTicks = 3
	g.noteAck(2, 10)
	g.hold(&raftpb.Message{Type: raftpb.MsgApp, From: 1, To: 2, Term: 2, Commit: 8})
	o.addMessages(g, []raftpb.Message{{Type: raftpb.MsgHeartbeat, From: 1, To: 2, Term: 2, Commit: 8}}, true, 13)
	if b := o.batches[2]; len(g.held) != 1 || b != nil {
		t.Fatalf("spared heartbeat: held %v, to 2 %+v; want the announcement held, nothing sent", g.held, b)
	}
	o.addMessages(g, []raftpb.Message{{Type: raftpb.MsgHeartbeat, From: 1, To: 2, Term: 2, Commit: 8}}, true, 14)
	if b := o.batches[2]; len(g.held) != 0 || b == nil || len(b.Heartbeats) != 1 || len(b.Items) != 0 {
		t.Fatalf("heartbeat not spared: held %v, to 2 %+v; want the heartbeat alone", g.held, b)
	}

	g.hold(&raftpb.Message{Type: raftpb.MsgApp, From: 1, To: 2, Term: 2, Commit: 9})
	rd := raft.Ready{SoftState: &raft.SoftState{RaftState: raft.StateFollower, Lead: 2}}
	g.noteReady(&rd)
	if len(g.held) != 0 {
		t.Fatalf("a replica that stopped leading still holds %v", g.held)
	}
}

// A member the leader removes still gets the announcement of the commit
// index that covers its removal, although the leader sends it nothing
// more (no append, no heartbeat) once it applied the change: the removed
// member applies its removal in the rounds right after the leader, without
// a tick. Held until a message or heartbeat that never comes, the
// announcement left it believing it was a member.
func TestRemovedMemberGetsTheAnnouncement(t *testing.T) {
	c := clusterWithWrite(t, "warm")
	c.changeMember(raftpb.ConfChangeRemoveNode, 3)
	// Host 2, still a member, gets its announcement with the next
	// heartbeat or append, as with any commit.
	for _, id := range []HostID{1, 3} {
		st, err := c.hosts[id].Status(1)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(st.Members, []HostID{1, 2}) {
			t.Fatalf("host %d: members %v after the removal committed, want [1 2]; %s", id, st.Members, c.describe(1))
		}
	}
}

// A removed member added back catches up with what it missed and applies
// what follows, with the leader holding its announcements throughout:
// every host applies the same writes and sees the same members.
func TestRemovedMemberRejoins(t *testing.T) {
	c := clusterWithWrite(t, "a")
	change := func(typ raftpb.ConfChangeType) {
		t.Helper()
		c.changeMember(typ, 3)
		c.tick(c.announceTicks()) // every member has the commit
	}
	change(raftpb.ConfChangeRemoveNode)
	c.propose(1, 1, "b")
	c.settle()
	c.tick(c.announceTicks())
	if got := c.apps[3].applied[1]; !slices.Equal(got, []string{"a"}) {
		t.Fatalf("removed host 3 applied %v, want [a]", got)
	}
	change(raftpb.ConfChangeAddNode)
	c.propose(1, 1, "c")
	c.settle()
	c.tick(c.announceTicks())
	for _, id := range c.ids {
		if got := c.apps[id].applied[1]; !slices.Equal(got, []string{"a", "b", "c"}) {
			t.Fatalf("host %d applied %v, want [a b c]; %s", id, got, c.describe(1))
		}
		if m := c.status(id, 1).Members; !slices.Equal(m, []HostID{1, 2, 3}) {
			t.Fatalf("host %d: members %v, want [1 2 3]", id, m)
		}
	}
}

// clusterWithWrite returns three hosts running group 1, led by host 1,
// with data written and the cluster settled; announcements are held (the
// default).
func clusterWithWrite(t *testing.T, data string) *manualCluster {
	c := newManualCluster(t, 3, nil)
	c.createGroup(1)
	c.elect(1, 1)
	c.propose(1, 1, data)
	c.settle()
	return c
}

// changeMember proposes a change of host id's membership of group 1 at
// host 1 and settles.
func (c *manualCluster) changeMember(typ raftpb.ConfChangeType, id HostID) {
	if err := c.hosts[1].ProposeConfChange(1, raftpb.ConfChange{Type: typ, NodeID: id}); err != nil {
		c.t.Fatal(err)
	}
	c.settle()
}

// A member that forwarded a proposal to the leader gets the commit index
// that covers it at once, not held: it answers its client once it
// applied the entry, so holding the announcement would add up to
// AppendSparesTicks+HeartbeatTick ticks to each write made through a
// follower (the simulation's writes through followers then missed their
// deadline, and the checker timed out on their unknown outcomes). The
// other member's announcement is still held.
func TestForwardingMemberGetsTheCommitAtOnce(t *testing.T) {
	c := clusterWithWrite(t, "warm")
	c.tick(c.announceTicks())
	c.propose(2, 1, "via 2")
	c.settle()
	if got := c.apps[2].applied[1]; !slices.Equal(got, []string{"warm", "via 2"}) {
		t.Fatalf("forwarding host 2 applied %v without a tick, want [warm via 2]; %s", got, c.describe(1))
	}
	if got := c.apps[3].applied[1]; !slices.Equal(got, []string{"warm"}) {
		t.Fatalf("host 3 applied %v before a tick, want [warm] (its announcement held)", got)
	}
	c.tick(c.announceTicks())
	if got := c.apps[3].applied[1]; !slices.Equal(got, []string{"warm", "via 2"}) {
		t.Fatalf("host 3 applied %v after the heartbeat, want [warm via 2]; %s", got, c.describe(1))
	}
}
