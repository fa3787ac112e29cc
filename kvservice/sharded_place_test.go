package kvservice

import (
	"errors"
	"testing"

	"github.com/raftkit/raft"
)

// TestShardNotPlacedOnASilentMember: a member leading a shard whose
// preferred member just went silent does not hand the shard to it, though
// the host still counts that member as alive (for two election timeouts).
// A transfer to a dead member stalls the shard: raft drops its proposals
// while the transfer is pending, and the clients get no answer before
// their request timeout (raftkv demo --shards saw it as an HTTP 504).
func TestShardNotPlacedOnASilentMember(t *testing.T) {
	c := newShardedCluster(t, 3, 3, nil)
	c.waitFor("shard 0 led by its preferred member 1", func() bool {
		return c.srv[2].leaderNow(0) == 1 && c.srv[1].preferred(0) == 1
	})
	s := c.srv[2]
	g := s.reps[0].group()
	c.waitFor("shard 0 moved to member 2", func() bool {
		if s.leaderNow(0) == 2 {
			return true
		}
		_ = c.srv[1].host.TransferLeader(g, 2)
		return false
	})
	c.stop(1)
	c.waitFor("member 2 leads shard 0 and stops hearing member 1", func() bool {
		gs, err := s.host.Status(g)
		return err == nil && gs.RaftState == raft.StateLeader && !s.host.PeerHeardWithin(1, c.config(2).ElectionTicks/2)
	})
	if !s.host.PeerAlive(1) {
		t.Log("the host already counts member 1 as failed: this run does not tell the fix apart")
	}
	moves := s.reps[0].moves.Load()
	s.watchLeaders(true /* all */, true /* place */)
	if n := s.reps[0].moves.Load() - moves; n != 0 {
		t.Fatalf("member 2 moved shard 0 to its preferred member 1 %d times, one it no longer hears from", n)
	}
}

// A proposal raft refused on this member is answered at once, as certainly
// not applied; reports of other members' proposals, or of another shard's,
// leave their waiters alone.
func TestDroppedProposalAnsweredAtOnce(t *testing.T) {
	c := newShardedCluster(t, 1, 2, nil)
	s := c.srv[1]
	waiter := func(shard int) chan outcome {
		ch := make(chan outcome, 1)
		s.mu.Lock()
		s.proposals[uint64(100+shard)] = shardWaiter{shard: shard, ch: ch}
		s.mu.Unlock()
		return ch
	}
	mine, other := waiter(0), waiter(1)
	app := shardApp{s}
	app.ProposalsDropped(s.reps[0].group(), [][]byte{
		encodeCommand(command{Node: s.cfg.ID, Req: 100, Op: "put", Key: "k", Value: "v"}),
		encodeCommand(command{Node: s.cfg.ID + 1, Req: 101, Op: "put", Key: "k", Value: "v"}), // another member's
		encodeCommand(command{Node: s.cfg.ID, Req: 101, Op: "put", Key: "k", Value: "v"}),     // shard 1's waiter
		[]byte("not a command"),
	})
	select {
	case out := <-mine:
		if !errors.Is(out.err, ErrNoLeader) {
			t.Fatalf("the dropped proposal was answered %v, want ErrNoLeader (not applied)", out.err)
		}
	default:
		t.Fatal("the dropped proposal's waiter was not answered")
	}
	select {
	case out := <-other:
		t.Fatalf("another shard's waiter was answered %+v", out)
	default:
	}
	s.mu.Lock()
	_, gone := s.proposals[100]
	_, kept := s.proposals[101]
	delete(s.proposals, 101)
	s.mu.Unlock()
	if gone || !kept {
		t.Fatalf("waiters after the report: 100 present %v (want false), 101 present %v (want true)", gone, kept)
	}
}
