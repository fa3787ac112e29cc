package confchange

import (
	"testing"

	pb "github.com/raftkit/raft/raftpb"
	"github.com/raftkit/raft/tracker"
)

// benchChanger returns a Changer holding five voters and two learners, the
// size of a typical production group.
func benchChanger(b *testing.B) Changer {
	chg := Changer{Tracker: tracker.MakeProgressTracker(256, 0), LastIndex: 100}
	cfg, prs, err := Restore(chg, pb.ConfState{Voters: []uint64{1, 2, 3, 4, 5}, Learners: []uint64{6, 7}})
	if err != nil {
		b.Fatal(err)
	}
	chg.Tracker.Config, chg.Tracker.Progress = cfg, prs
	return chg
}

func BenchmarkSimpleAddVoter(b *testing.B) {
	chg := benchChanger(b)
	cc := pb.ConfChangeSingle{Type: pb.ConfChangeAddNode, NodeID: 8}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := chg.Simple(cc); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEnterJointReplaceTwo(b *testing.B) {
	chg := benchChanger(b)
	ccs, err := pb.ConfChangesFromString("r4 r5 v8 v9 l4")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := chg.EnterJoint(true /* autoLeave */, ccs...); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRestoreJoint(b *testing.B) {
	cs := pb.ConfState{
		Voters:         []uint64{1, 2, 3, 8, 9},
		VotersOutgoing: []uint64{1, 2, 3, 4, 5},
		Learners:       []uint64{6, 7},
		LearnersNext:   []uint64{4},
	}
	b.ReportAllocs()
	for b.Loop() {
		chg := Changer{Tracker: tracker.MakeProgressTracker(256, 0), LastIndex: 100}
		if _, _, err := Restore(chg, cs); err != nil {
			b.Fatal(err)
		}
	}
}
