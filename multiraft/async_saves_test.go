package multiraft

import (
	"fmt"
	"testing"

	"github.com/raftkit/raft"
	"github.com/raftkit/raft/raftpb"
)

// durabilityChecker is a Transport that checks, as each batch leaves
// host from, that every acknowledgement of appends and every granted vote
// in it answers for what from's storage already holds: the entries up to
// the acknowledged index, and the vote in the HardState. In manual mode
// everything runs on the test's goroutine, so the storage seen here is
// exactly what SaveBatch had written when the batch was sent.
type durabilityChecker struct {
	t     *testing.T
	from  HostID
	store *MemStorage
	next  Transport
	// acks and votes count the messages checked.
	acks, votes *int
}

func (d durabilityChecker) Send(to HostID, b Batch) {
	for i := range b.Items {
		it := &b.Items[i]
		if it.Kind != KindRaft || it.Msg.Reject {
			continue
		}
		switch it.Msg.Type {
		case raftpb.MsgAppResp:
			*d.acks++
			d.checkLog(it.Group, &it.Msg)
		case raftpb.MsgVoteResp:
			*d.votes++
			d.checkVote(it.Group, &it.Msg)
		}
	}
	d.next.Send(to, b)
}

func (d durabilityChecker) storage(g GroupID) *raft.MemoryStorage {
	d.store.mu.Lock()
	defer d.store.mu.Unlock()
	return d.store.groups[g]
}

func (d durabilityChecker) checkLog(g GroupID, m *raftpb.Message) {
	ms := d.storage(g)
	last, err := ms.LastIndex()
	if err != nil || last < m.Index {
		d.t.Errorf("host %d group %d acknowledged index %d (term %d) with %d durable", d.from, g, m.Index, m.Term, last)
	}
}

func (d durabilityChecker) checkVote(g GroupID, m *raftpb.Message) {
	hs, _, err := d.storage(g).InitialState()
	if err != nil || hs.Term != m.Term || hs.Vote != m.To {
		d.t.Errorf("host %d group %d granted a vote to %d in term %d with HardState %+v durable", d.from, g, m.To, m.Term, hs)
	}
}

// With AsyncSaves, no acknowledgement of appends and no vote leaves a
// host before the write it answers for is durable (saver invariant 2):
// every such message sent in elections, replication and a change of
// leader is checked against the sender's storage as it leaves.
func TestAsyncSavesAckAfterDurable(t *testing.T) {
	var acks, votes int
	var c *manualCluster
	c = newManualCluster(t, 3, func(cfg *HostConfig) {
		cfg.AnnounceCommitsAtOnce = true
		cfg.AsyncSaves = true
		cfg.Transport = durabilityChecker{t: t, from: cfg.ID, store: cfg.Storage.(*MemStorage), next: cfg.Transport,
			acks: &acks, votes: &votes}
	})
	for g := GroupID(1); g <= 3; g++ {
		c.createGroup(g)
	}
	c.settle()
	for g := GroupID(1); g <= 3; g++ {
		c.elect(g, HostID(g))
		for i := 0; i < 5; i++ {
			c.propose(HostID(g), g, fmt.Sprintf("g%d-%d", g, i))
		}
		c.settle()
		next := HostID(g%3 + 1)
		if err := c.hosts[HostID(g)].TransferLeader(g, next); err != nil {
			t.Fatal(err)
		}
		c.settle()
		if l := c.leader(g); l != next {
			t.Fatalf("group %d: leader %d after the transfer to %d", g, l, next)
		}
		c.propose(next, g, fmt.Sprintf("g%d-late", g))
		c.settle()
	}
	for g := GroupID(1); g <= 3; g++ {
		for _, id := range c.ids {
			if n := c.apps[id].count(g); n != 6 {
				t.Fatalf("host %d applied %d entries of group %d, want 6", id, n, g)
			}
		}
	}
	if acks == 0 || votes == 0 {
		t.Fatalf("checked %d acknowledgements and %d votes", acks, votes)
	}
}

// With AsyncSaves, a leader whose write is still with the saver goes on:
// its appends leave before its own save, a second proposal is stepped and
// replicated while the first is unsaved, and it applies neither before
// its own log holds them (raft hands out only entries durable here).
func TestAsyncSavesLeaderRunsAheadOfItsDisk(t *testing.T) {
	hold := false
	c := newManualCluster(t, 3, func(cfg *HostConfig) { cfg.AsyncSaves = true })
	c.hosts[1].holdSaves = func() bool { return hold }
	c.createGroup(1)
	c.settle()
	c.elect(1, 1)
	before, _ := c.store[1].groups[1].LastIndex()
	hold = true
	c.propose(1, 1, "a")
	c.settle()
	c.propose(1, 1, "b")
	c.settle()
	leaderLast, _ := c.store[1].groups[1].LastIndex()
	if leaderLast != before {
		t.Fatalf("leader's storage at %d, want %d (its saves are held)", leaderLast, before)
	}
	for _, id := range []HostID{2, 3} {
		if last, _ := c.store[id].groups[1].LastIndex(); last != before+2 {
			t.Fatalf("follower %d's storage at %d, want %d: the leader's appends did not leave before its save", id, last, before+2)
		}
	}
	if n := c.apps[1].count(1); n != 0 {
		t.Fatalf("leader applied %d entries it had not saved", n)
	}
	hold = false
	c.settle()
	c.tick(c.announceTicks()) // the commit index reaches the followers
	for _, id := range c.ids {
		if n := c.apps[id].count(1); n != 2 {
			t.Fatalf("host %d applied %d entries, want 2", id, n)
		}
	}
}

// ackCounter is a Transport that counts the acknowledgements of appends
// its host sends.
type ackCounter struct {
	next Transport
	acks *int
}

func (a ackCounter) Send(to HostID, b Batch) {
	for i := range b.Items {
		if m := &b.Items[i].Msg; b.Items[i].Kind == KindRaft && m.Type == raftpb.MsgAppResp && !m.Reject {
			*a.acks++
		}
	}
	a.next.Send(to, b)
}

// A follower's save that holds several Readys of a group sends its leader
// only the highest acknowledgement, and the saver steps the notes of
// durability into the idle group itself: no round runs for them while
// the leader's commit index has not reached the entries.
func TestAsyncSavesOneAckPerSaveAndNoRoundForNotes(t *testing.T) {
	hold := false
	acks := 0
	c := newManualCluster(t, 3, func(cfg *HostConfig) {
		cfg.AsyncSaves = true
		if cfg.ID == 2 {
			cfg.Transport = ackCounter{next: cfg.Transport, acks: &acks}
		}
	})
	c.hosts[2].holdSaves = func() bool { return hold }
	c.net.Cut(3, true) // the leader commits only with host 2's acknowledgements
	c.createGroup(1)
	c.settle()
	c.elect(1, 1)
	hold = true
	for _, data := range []string{"a", "b", "c"} {
		c.propose(1, 1, data)
		c.settle()
	}
	if !c.hosts[2].saver.pending() {
		t.Fatal("host 2 has no held saves")
	}
	acks = 0
	rounds := c.hosts[2].Stats().Rounds
	hold = false
	if err := c.hosts[2].RunPending(); err != nil {
		t.Fatal(err)
	}
	if acks != 1 {
		t.Fatalf("host 2's save of three Readys sent %d acknowledgements, want 1", acks)
	}
	if n := c.hosts[2].Stats().Rounds - rounds; n != 0 {
		t.Fatalf("host 2 ran %d rounds to step its notes of durability, want 0", n)
	}
	c.settle()
	c.tick(c.announceTicks())
	for _, id := range []HostID{1, 2} {
		if n := c.apps[id].count(1); n != 3 {
			t.Fatalf("host %d applied %d entries, want 3", id, n)
		}
	}
}
