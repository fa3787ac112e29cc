package multiraft

import (
	"testing"

	"github.com/raftkit/raft"
	"github.com/raftkit/raft/raftpb"
)

// A group whose leader finds it idle quiesces on every member: nobody
// ticks it and no message for it crosses the network.
func TestQuiesceWhenIdle(t *testing.T) {
	c := newManualCluster(t, 3, nil)
	c.createGroup(1)
	c.settle()
	c.elect(1, 1)
	c.propose(1, 1, "a")
	c.settle()
	c.tick(10)
	if !c.allQuiesced(1) {
		t.Fatalf("not quiesced: %s", c.describe(1))
	}
	for _, id := range c.ids {
		if got := c.apps[id].count(1); got != 1 {
			t.Fatalf("host %d applied %d entries, want 1", id, got)
		}
	}
	before := c.hosts[1].Stats().ItemsOut + c.hosts[2].Stats().ItemsOut + c.hosts[3].Stats().ItemsOut
	c.tick(50)
	after := c.hosts[1].Stats().ItemsOut + c.hosts[2].Stats().ItemsOut + c.hosts[3].Stats().ItemsOut
	if after != before {
		t.Fatalf("a quiesced group sent %d messages in 50 ticks", after-before)
	}
	if c.hosts[1].Stats().Awake != 0 {
		t.Fatalf("leader still ticks %d groups", c.hosts[1].Stats().Awake)
	}
}

// quiescedGroup returns a 3-host cluster whose group 1, led by host 1,
// committed one entry and quiesced everywhere.
func quiescedGroup(t *testing.T, tweak func(*HostConfig)) *manualCluster {
	t.Helper()
	c := newManualCluster(t, 3, tweak)
	c.createGroup(1)
	c.settle()
	c.elect(1, 1)
	c.propose(1, 1, "a")
	c.settle()
	c.tick(10)
	if !c.allQuiesced(1) {
		t.Fatalf("not quiesced: %s", c.describe(1))
	}
	return c
}

func TestQuiescedGroupWakesOnProposal(t *testing.T) {
	for _, at := range []HostID{1, 2} { // the leader, then a follower
		c := quiescedGroup(t, announceAtOnce)
		c.propose(at, 1, "b")
		c.settle()
		for _, id := range c.ids {
			if got := c.apps[id].count(1); got != 2 {
				t.Fatalf("proposal at %d: host %d applied %d entries, want 2; %s", at, id, got, c.describe(1))
			}
		}
		if c.allQuiesced(1) {
			t.Fatalf("proposal at %d did not wake the group", at)
		}
		c.tick(10)
		if !c.allQuiesced(1) {
			t.Fatalf("proposal at %d: group did not quiesce again: %s", at, c.describe(1))
		}
	}
}

// A message from a peer other than the leader (here a campaigning member)
// wakes a quiesced follower, which wakes its leader.
func TestQuiescedGroupWakesOnMessage(t *testing.T) {
	c := quiescedGroup(t, nil)
	if err := c.hosts[3].Campaign(1); err != nil {
		t.Fatal(err)
	}
	c.settle()
	for _, id := range c.ids {
		if c.status(id, 1).Quiesced {
			t.Fatalf("host %d still quiesced after a campaign: %s", id, c.describe(1))
		}
	}
	c.tick(30)
	if !c.allQuiesced(1) || c.leader(1) == 0 {
		t.Fatalf("group did not settle and quiesce again: %s", c.describe(1))
	}
}

// When the leader's host fails, the followers notice it once per host (not
// per group), wake, and elect a new leader among themselves.
func TestQuiescedGroupWakesOnLeaderHostFailure(t *testing.T) {
	c := newManualCluster(t, 3, nil)
	for g := GroupID(1); g <= 3; g++ {
		c.createGroup(g)
	}
	c.settle()
	c.elect(1, 1)
	c.elect(2, 2)
	c.elect(3, 1)
	c.tick(10)
	for g := GroupID(1); g <= 3; g++ {
		if !c.allQuiesced(g) {
			t.Fatalf("group %d not quiesced: %s", g, c.describe(g))
		}
	}
	c.net.Cut(1, true)
	c.ids = []HostID{2, 3} // host 1 is gone: stop driving it
	c.tick(40)
	for _, g := range []GroupID{1, 3} {
		l := c.leader(g)
		if l != 2 && l != 3 {
			t.Fatalf("group %d: no new leader after its leader's host failed: %s", g, c.describe(g))
		}
	}
	if st := c.status(2, 2); st.RaftState.String() != "StateLeader" || st.Term != 2 {
		t.Fatalf("group 2 (led by a live host) was disturbed: %s", c.describe(2))
	}
	if c.hosts[2].PeerAlive(1) {
		t.Fatal("host 2 still counts host 1 as alive")
	}
}

// A quiesced leader cut off from its group must not answer a lease read
// after the others elected a new leader: waking it ends its lease (its
// clock, frozen while quiesced, is aged by an election timeout), so the
// read waits for a heartbeat round that cannot succeed.
func TestQuiescedLeaderServesNoLeaseRead(t *testing.T) {
	c := quiescedGroup(t, func(cfg *HostConfig) { cfg.ReadOnlyOption = raft.ReadOnlyLeaseBased })
	// While connected, a woken leader still answers (through a round).
	if err := c.hosts[1].ReadIndex(1, []byte("r1")); err != nil {
		t.Fatal(err)
	}
	c.settle()
	c.tick(1)
	if n := len(c.apps[1].reads[1]); n != 1 {
		t.Fatalf("connected leader answered %d reads, want 1", n)
	}
	c.tick(25) // outstanding reads hold quiescence off for 2*ElectionTick
	if !c.allQuiesced(1) {
		t.Fatalf("not quiesced again: %s", c.describe(1))
	}
	c.net.Cut(1, true)
	old := c.hosts[1]
	c.ids = []HostID{2, 3}
	c.tick(40)
	if l := c.leader(1); l != 2 && l != 3 {
		t.Fatalf("no new leader: %s", c.describe(1))
	}
	c.propose(c.leader(1), 1, "new")
	c.settle()
	if err := old.ReadIndex(1, []byte("r2")); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		_ = old.RunPending()
		old.Tick()
	}
	_ = old.RunPending()
	if n := len(c.apps[1].reads[1]); n != 1 {
		t.Fatalf("the cut-off old leader answered a read: %v", c.apps[1].reads[1])
	}
}

// A follower woken by a message that did not reach the leader (here a
// candidate cut off from the leader in one direction) asks the leader to
// wake, so that the leader's heartbeats resume before election timers run
// out.
func TestWokenFollowerWakesLeader(t *testing.T) {
	c := quiescedGroup(t, nil)
	c.net.CutLink(3, 1, true)
	if err := c.hosts[3].Campaign(1); err != nil {
		t.Fatal(err)
	}
	c.settle()
	if c.status(1, 1).Quiesced {
		t.Fatalf("leader still quiesced after its follower woke: %s", c.describe(1))
	}
}

// A follower that cannot quiesce where its leader says (its log or commit
// index differs) stays awake and asks the leader to wake and replicate.
func TestFollowerRefusingQuiesceWakesLeader(t *testing.T) {
	c := newManualCluster(t, 3, nil)
	c.createGroup(1)
	c.settle()
	c.elect(1, 1)
	c.propose(1, 1, "a")
	c.settle()
	c.net.CutLink(1, 2, true) // host 2 misses the quiescing heartbeat
	c.tick(10)
	c.net.CutLink(1, 2, false)
	if !c.status(1, 1).Quiesced || c.status(2, 1).Quiesced {
		t.Fatalf("setup: want the leader quiesced and host 2 awake: %s", c.describe(1))
	}
	st := c.status(1, 1)
	c.net.Endpoint(1).Send(2, Batch{From: 1, Items: []Item{{Group: 1, Kind: KindQuiesce, Msg: raftpb.Message{
		Type: raftpb.MsgHeartbeat, From: 1, To: 2, Term: st.Term, Commit: st.Commit - 1}}}})
	c.settle()
	if c.status(2, 1).Quiesced {
		t.Fatalf("host 2 quiesced on a stale commit index: %s", c.describe(1))
	}
	if c.status(1, 1).Quiesced {
		t.Fatalf("the refusal did not wake the leader: %s", c.describe(1))
	}
}

// When a member's host comes back after counting as failed, a quiesced
// leader with a member there wakes to catch it up.
func TestQuiescedLeaderWakesWhenMemberHostReturns(t *testing.T) {
	c := quiescedGroup(t, nil)
	c.net.Cut(3, true)
	c.ids = []HostID{1, 2}
	c.tick(c.hosts[1].cfg.HostTimeoutTicks + 5)
	if c.hosts[1].PeerAlive(3) || !c.status(1, 1).Quiesced {
		t.Fatalf("setup: want host 3 down and the group quiesced: %s", c.describe(1))
	}
	c.net.Cut(3, false)
	c.ids = []HostID{1, 2, 3}
	c.hosts[3].Tick() // its ping reaches host 1
	c.settle()
	if !c.hosts[1].PeerAlive(3) || c.status(1, 1).Quiesced {
		t.Fatalf("leader did not wake when host 3 came back: %s", c.describe(1))
	}
}

// A peer host whose frames come late, by more than an election timeout
// but less than HostTimeoutTicks (a busy host on a loaded machine), is
// not declared failed: the quiesced groups it leads stay asleep. With
// the host timeout at one election timeout, the same delay declared the
// peer down and woke them all (and again when it was heard).
func TestLatePeerDoesNotWakeQuiescedGroups(t *testing.T) {
	c := newManualCluster(t, 3, nil)
	for g := GroupID(1); g <= 3; g++ {
		c.createGroup(g)
	}
	c.settle()
	for g := GroupID(1); g <= 3; g++ {
		c.elect(g, 2)
	}
	c.tick(10)
	for g := GroupID(1); g <= 3; g++ {
		if !c.allQuiesced(g) {
			t.Fatalf("group %d not quiesced: %s", g, c.describe(g))
		}
	}
	wakes := c.hosts[1].Stats().Wakes
	c.net.CutLink(2, 1, true) // host 2's frames to host 1 are held up
	c.tick(c.hosts[1].cfg.ElectionTick + 2)
	c.net.CutLink(2, 1, false)
	c.tick(3)
	st := c.hosts[1].Stats()
	if st.PeersDown != 0 || st.Wakes != wakes || !c.hosts[1].PeerAlive(2) {
		t.Fatalf("late peer declared down %d times, %d wakes", st.PeersDown, st.Wakes-wakes)
	}
	for g := GroupID(1); g <= 3; g++ {
		if !c.allQuiesced(g) {
			t.Fatalf("group %d woke: %s", g, c.describe(g))
		}
	}
}

// A woken leader whose followers' answers are late does not quiesce again
// before they come: waking ran a quorum check that cleared its marks of
// active members, and quiescing with them cleared made the next wake-up's
// check fail, so that the leader stepped down with both followers alive.
func TestLeaderQuiescesOnlyWithActiveMembers(t *testing.T) {
	c := quiescedGroup(t, nil)
	wake := func() {
		c.hosts[1].Receive(Batch{From: 2, Items: []Item{{Group: 1, Kind: KindWake,
			Msg: raftpb.Message{From: 2, To: 1}}}})
	}
	c.net.CutLink(2, 1, true)
	c.net.CutLink(3, 1, true)
	wake()
	c.tick(4) // the followers' answers are lost
	c.net.CutLink(2, 1, false)
	c.net.CutLink(3, 1, false)
	c.tick(6)
	if !c.allQuiesced(1) {
		t.Fatalf("not quiesced again: %s", c.describe(1))
	}
	wake()
	c.tick(1)
	if l := c.leader(1); l != 1 || c.status(1, 1).Term != 2 {
		t.Fatalf("leader changed after a wake-up, followers alive: %s", c.describe(1))
	}
}

// Whatever the phase of raft's quorum-check clock when the group went
// idle, a woken leader keeps leading for a good part of an election
// timeout even if no answer reaches it: the ageing on wake-up runs a
// check, and the leader quiesced early enough after the previous one
// that the next check does not follow the wake-up within a tick or two
// (it did, and the leader stepped down before its members could answer).
func TestWokenLeaderIsNotCheckedAgainAtOnce(t *testing.T) {
	for phase := 0; phase < 10; phase++ {
		c := newManualCluster(t, 3, nil)
		c.createGroup(1)
		c.settle()
		c.elect(1, 1)
		for i := 0; i < phase; i++ { // busy for phase ticks
			c.propose(1, 1, "a")
			c.tick(1)
		}
		c.tick(15)
		if !c.allQuiesced(1) {
			t.Fatalf("phase %d: not quiesced: %s", phase, c.describe(1))
		}
		c.net.CutLink(2, 1, true)
		c.net.CutLink(3, 1, true)
		c.hosts[1].Receive(Batch{From: 2, Items: []Item{{Group: 1, Kind: KindWake,
			Msg: raftpb.Message{From: 2, To: 1}}}})
		c.tick(c.hosts[1].cfg.ElectionTick / 2)
		if st := c.status(1, 1); st.RaftState != raft.StateLeader {
			t.Fatalf("phase %d: woken leader stepped down within half an election timeout: %s", phase, c.describe(1))
		}
	}
}

// A heartbeat of its leader, in its term, reaching a quiesced follower
// (one the leader sent before its quiescing heartbeat, delivered late) is
// answered, and neither the follower nor the leader wakes; a heartbeat of
// another term still wakes it.
func TestLateHeartbeatKeepsTheGroupQuiesced(t *testing.T) {
	c := quiescedGroup(t, nil)
	st := c.status(2, 1)
	hb := func(term uint64) {
		c.hosts[2].Receive(Batch{From: 1, Items: []Item{{Group: 1, Kind: KindRaft, Msg: raftpb.Message{
			Type: raftpb.MsgHeartbeat, From: 1, To: 2, Term: term, Commit: st.Commit}}}})
		c.settle()
	}
	hb(st.Term)
	if !c.allQuiesced(1) {
		t.Fatalf("a late heartbeat of the term woke the group: %s", c.describe(1))
	}
	hb(st.Term + 1)
	if c.status(2, 1).Quiesced {
		t.Fatalf("a heartbeat of a new term left the follower quiesced: %s", c.describe(1))
	}
}
