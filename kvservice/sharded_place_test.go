package kvservice

import (
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
