package multiraft

import (
	"testing"

	"github.com/raftkit/raft/raftpb"
)

// TestRecycledItemsAreZeroToCapacity checks the pool's invariant: a slice
// itemsWithRoom returns is zero up to its capacity, however much of it the
// previous holder filled, so that appending to it never finds a stale
// message and the pool keeps no message's entries alive.
func TestRecycledItemsAreZeroToCapacity(t *testing.T) {
	reused := 0
	for round := 0; round < 100; round++ {
		s := itemsWithRoom(4 + round%7)
		if cap(s) == 0 {
			t.Fatal("itemsWithRoom returned no room")
		}
		for i := 0; i < len(s[:cap(s)]); i++ {
			if it := s[:cap(s)][i]; it.Group != 0 || it.Msg.Entries != nil || it.Msg.Type != 0 {
				t.Fatalf("round %d: slot %d of %d holds %+v", round, i, cap(s), it)
			}
		}
		if round > 0 && cap(s) > 4+round%7 {
			reused++
		}
		// Fill a varying part of it, growing it past its capacity at
		// times, as a batch merged by the writer does.
		for i := 0; i < 1+round%13; i++ {
			s = append(s, Item{Group: GroupID(i + 1), Msg: raftpb.Message{Type: raftpb.MsgApp, Entries: []raftpb.Entry{{Index: uint64(i)}}}})
		}
		recycleItems(s)
	}
	if !raceEnabled && reused == 0 {
		t.Fatal("the pool never handed a slice back: the test checked only fresh slices")
	}
}
