package confchange

import (
	pb "github.com/raftkit/raft/raftpb"
	"github.com/raftkit/raft/tracker"
)

// Restore rebuilds the configuration described by cs, starting from chg
// (whose tracker must hold the empty configuration), by replaying it as a
// sequence of ordinary changes, so that the result passes exactly the
// validation a live change would. New progress is created as the Changer's
// methods create it (Next = max(chg.LastIndex, 1)).
//
// A non-joint cs is replayed as one simple change per member. A joint cs is
// replayed in two stages: simple changes first build its outgoing voters as
// a plain configuration, then EnterJoint turns that into the outgoing half
// and applies the incoming half on top. For example, voters=(1 2 3)&&(1 2 4)
// learners_next=(4) becomes
//
//	simple v1; simple v2; simple v4
//	enter-joint r1 r2 r4 v1 v2 v3 l4
//
// The first removals empty the incoming half so that it ends up holding
// exactly cs.Voters; adding 4 as a learner while it still votes in the
// outgoing half is what stages it in LearnersNext. Learners of the
// configuration before the joint one cannot be told apart from new ones and
// are treated as new.
func Restore(chg Changer, cs pb.ConfState) (tracker.Config, tracker.ProgressMap, error) {
	var steps []pb.ConfChangeSingle
	for _, id := range cs.VotersOutgoing {
		steps = append(steps, single(pb.ConfChangeAddNode, id))
	}
	var final []pb.ConfChangeSingle
	for _, id := range cs.VotersOutgoing {
		final = append(final, single(pb.ConfChangeRemoveNode, id))
	}
	for _, id := range cs.Voters {
		final = append(final, single(pb.ConfChangeAddNode, id))
	}
	for _, ids := range [][]uint64{cs.Learners, cs.LearnersNext} {
		for _, id := range ids {
			final = append(final, single(pb.ConfChangeAddLearnerNode, id))
		}
	}

	joint := len(cs.VotersOutgoing) > 0
	if !joint {
		// Without an outgoing half, every member is just added in turn.
		steps, final = final, nil
	}
	for _, cc := range steps {
		cfg, prs, err := chg.Simple(cc)
		if err != nil {
			return failed(err)
		}
		chg.Tracker.Config, chg.Tracker.Progress = cfg, prs
	}
	if joint {
		cfg, prs, err := chg.EnterJoint(cs.AutoLeave, final...)
		if err != nil {
			return failed(err)
		}
		chg.Tracker.Config, chg.Tracker.Progress = cfg, prs
	}
	return chg.Tracker.Config, chg.Tracker.Progress, nil
}

// single builds one change of the given type for id.
func single(typ pb.ConfChangeType, id uint64) pb.ConfChangeSingle {
	return pb.ConfChangeSingle{Type: typ, NodeID: id}
}
