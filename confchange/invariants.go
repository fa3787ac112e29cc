package confchange

import (
	"errors"
	"fmt"
	"slices"

	"github.com/raftkit/raft/tracker"
)

// verifyTracker reports the first of these rules that cfg and prs break;
// every Changer method checks its input and its output against them:
//
//  1. Every voter (in either half), learner and staged learner has a
//     Progress.
//  2. A staged learner (LearnersNext) votes in the outgoing half and its
//     Progress is not yet marked as a learner.
//  3. A learner votes in neither half and its Progress is marked as a
//     learner.
//  4. Outside a joint configuration, the outgoing half and LearnersNext are
//     nil (not merely empty) and AutoLeave is false.
//
// The empty configuration passes: bootstrap and tests build a first
// configuration from it one change at a time. IDs are visited in ascending
// order so that the reported violation does not depend on map order.
func verifyTracker(cfg tracker.Config, prs tracker.ProgressMap) error {
	for _, set := range []map[uint64]struct{}{
		cfg.Voters[0], cfg.Voters[1], cfg.Learners, cfg.LearnersNext,
	} {
		for _, id := range sortedIDs(set) {
			if _, ok := prs[id]; !ok {
				return fmt.Errorf("no progress for %d", id)
			}
		}
	}

	for _, id := range sortedIDs(cfg.LearnersNext) {
		if _, ok := cfg.Voters[1][id]; !ok {
			return fmt.Errorf("%d is in LearnersNext, but not Voters[1]", id)
		}
		if prs[id].IsLearner {
			return fmt.Errorf("%d is in LearnersNext, but is already marked as learner", id)
		}
	}

	for _, id := range sortedIDs(cfg.Learners) {
		if _, ok := cfg.Voters[1][id]; ok {
			return fmt.Errorf("%d is in Learners and Voters[1]", id)
		}
		if _, ok := cfg.Voters[0][id]; ok {
			return fmt.Errorf("%d is in Learners and Voters[0]", id)
		}
		if !prs[id].IsLearner {
			return fmt.Errorf("%d is in Learners, but is not marked as learner", id)
		}
	}

	if len(cfg.Voters[1]) == 0 {
		switch {
		case cfg.Voters[1] != nil:
			return errors.New("cfg.Voters[1] must be nil when not joint")
		case cfg.LearnersNext != nil:
			return errors.New("cfg.LearnersNext must be nil when not joint")
		case cfg.AutoLeave:
			return errors.New("AutoLeave must be false when not joint")
		}
	}
	return nil
}

// sortedIDs returns the members of set in ascending order.
func sortedIDs(set map[uint64]struct{}) []uint64 {
	ids := make([]uint64, 0, len(set))
	for id := range set {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}
