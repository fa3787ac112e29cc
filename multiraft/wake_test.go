package multiraft

import (
	"testing"

	"github.com/raftkit/raft"
)

// A leader woken from quiescence keeps its leadership while its followers'
// first answers are on their way: the followers acknowledged everything
// when the group quiesced, so CheckQuorum must not find the quorum
// inactive within a few ticks of the wake-up. The followers' answers are
// held back here (one-way cuts) for half an election timeout after the
// wake, for every phase of the leader's election clock at quiescence.
func TestWokenLeaderKeepsLeadershipWhileAnswersArrive(t *testing.T) {
	for pre := 0; pre < 10; pre++ {
		c := newManualCluster(t, 3, nil)
		c.createGroup(1)
		c.settle()
		c.elect(1, 1)
		c.tick(pre) // shifts the leader's election clock
		c.propose(1, 1, "a")
		c.settle()
		c.tick(10)
		if !c.allQuiesced(1) {
			t.Fatalf("pre %d: not quiesced: %s", pre, c.describe(1))
		}
		c.net.CutLink(2, 1, true)
		c.net.CutLink(3, 1, true)
		c.propose(1, 1, "b")
		c.settle()
		c.tick(4)
		if st := c.status(1, 1); st.RaftState != raft.StateLeader {
			t.Fatalf("pre %d: the woken leader stepped down %d ticks after waking: %s", pre, 4, c.describe(1))
		}
	}
}
