package knobs_test

import (
	"fmt"
	"io"
	"log"
	"strings"
	"testing"

	"github.com/raftkit/raft"
	"github.com/raftkit/raft/internal/knobs"
	pb "github.com/raftkit/raft/raftpb"
)

// loneVoter is a single-voter node with ElectionTick 3, so that its
// timeouts are drawn from [3, 6).
func loneVoter(t *testing.T) *raft.RawNode {
	s := raft.NewMemoryStorage()
	var snap pb.Snapshot
	snap.Metadata.Index, snap.Metadata.Term = 2, 1
	snap.Metadata.ConfState.Voters = []uint64{1}
	if err := s.ApplySnapshot(snap); err != nil {
		t.Fatal(err)
	}
	rn, err := raft.NewRawNode(&raft.Config{
		ID: 1, ElectionTick: 3, HeartbeatTick: 1, Storage: s, MaxSizePerMsg: 1 << 20,
		MaxInflightMsgs: 16, Applied: 2, Logger: &raft.DefaultLogger{Logger: log.New(io.Discard, "", 0)},
	})
	if err != nil {
		t.Fatal(err)
	}
	return rn
}

// campaignsAfter fails unless rn stays a follower for timeout-1 ticks and
// campaigns on the next.
func campaignsAfter(t *testing.T, rn *raft.RawNode, timeout int) {
	t.Helper()
	for i := 1; i < timeout; i++ {
		rn.Tick()
		if st := rn.BasicStatus().RaftState; st != raft.StateFollower {
			t.Fatalf("after %d ticks: %s, want StateFollower", i, st)
		}
	}
	rn.Tick()
	if st := rn.BasicStatus().RaftState; st == raft.StateFollower {
		t.Fatalf("after %d ticks the node must have campaigned", timeout)
	}
}

// The override reaches the timeout the node drew.
func TestSetRandomizedElectionTimeout(t *testing.T) {
	for _, timeout := range []int{1, 5, 9} {
		rn := loneVoter(t)
		knobs.SetRandomizedElectionTimeout(rn, timeout)
		campaignsAfter(t, rn, timeout)
	}
}

// The jitter draws the current timeout at once, and every later one: it is
// asked for a value in [0, ElectionTick), which raft adds to ElectionTick.
func TestSetElectionJitter(t *testing.T) {
	for _, j := range []int{0, 2} {
		rn := loneVoter(t)
		var asked []int
		knobs.SetElectionJitter(rn, func(n int) int { asked = append(asked, n); return j })
		if len(asked) != 1 || asked[0] != 3 {
			t.Fatalf("jitter asked %v, want one draw in [0, 3)", asked)
		}
		campaignsAfter(t, rn, 3+j)
		if len(asked) < 2 {
			t.Fatalf("campaigning drew no new timeout: %v", asked)
		}
	}
}

// Anything but a *raft.RawNode is refused, naming what it got.
func TestKnobsRefuseOtherNodes(t *testing.T) {
	defer func() {
		if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), "got string") {
			t.Fatalf("recovered %v, want a panic naming the type", r)
		}
	}()
	knobs.SetRandomizedElectionTimeout("node 1", 3)
}
