package confchange

import (
	"fmt"

	"github.com/raftkit/raft/quorum"
	pb "github.com/raftkit/raft/raftpb"
	"github.com/raftkit/raft/tracker"
)

// draft is the private working copy that one Changer call edits. Its
// configuration maps are its own, and so are the Progress structs in prs;
// the Inflights buffers are still shared with the Changer's tracker, which
// is harmless because a draft only ever edits a Progress's IsLearner flag.
type draft struct {
	cfg tracker.Config
	prs tracker.ProgressMap

	// Parameters for the Progress of peers that the change adds.
	lastIndex        uint64
	maxInflight      int
	maxInflightBytes uint64
}

// start copies the Changer's configuration and progress into a draft and
// checks that they satisfy the package invariants, so that every edit starts
// from a consistent state.
func (c Changer) start() (*draft, error) {
	src := c.Tracker
	w := &draft{
		cfg: tracker.Config{
			Voters: quorum.JointConfig{
				copySet(src.Voters[0]),
				copySet(src.Voters[1]),
			},
			Learners:     copySet(src.Learners),
			LearnersNext: copySet(src.LearnersNext),
			// AutoLeave is deliberately not carried over: EnterJoint sets
			// it, LeaveJoint clears it, and Simple only runs on non-joint
			// configurations, for which it is false.
		},
		prs:              make(tracker.ProgressMap, len(src.Progress)),
		lastIndex:        c.LastIndex,
		maxInflight:      src.MaxInflight,
		maxInflightBytes: src.MaxInflightBytes,
	}
	// A zero ProgressTracker has a nil incoming half; give it a map so that
	// voters can be added to it.
	if w.cfg.Voters[0] == nil {
		w.cfg.Voters[0] = quorum.MajorityConfig{}
	}
	for id, pr := range src.Progress {
		if pr == nil {
			return nil, fmt.Errorf("nil progress for %d", id)
		}
		cp := *pr
		w.prs[id] = &cp
	}
	if err := verifyTracker(w.cfg, w.prs); err != nil {
		return nil, err
	}
	return w, nil
}

// finish checks the edited draft against the package invariants and hands
// it out as the result of the change.
func (w *draft) finish() (tracker.Config, tracker.ProgressMap, error) {
	if err := verifyTracker(w.cfg, w.prs); err != nil {
		return tracker.Config{}, tracker.ProgressMap{}, err
	}
	return w.cfg, w.prs, nil
}

// inJoint reports whether the draft has an outgoing majority.
func (w *draft) inJoint() bool {
	return len(w.cfg.Voters[1]) > 0
}

// outgoingVoter reports whether id votes in the outgoing majority.
func (w *draft) outgoingVoter(id uint64) bool {
	_, ok := w.cfg.Voters[1][id]
	return ok
}

// applyAll applies the changes in order to the incoming half of the draft;
// the outgoing half, if any, is never edited. It fails on an unknown change
// type, or if no incoming voter is left at the end.
func (w *draft) applyAll(ccs []pb.ConfChangeSingle) error {
	for _, cc := range ccs {
		// The application zeroes the NodeID of a change it decided not to
		// carry out, so that the entry can still be applied as a no-op.
		if cc.NodeID == 0 {
			continue
		}
		switch cc.Type {
		case pb.ConfChangeAddNode:
			w.asVoter(cc.NodeID)
		case pb.ConfChangeAddLearnerNode:
			w.asLearner(cc.NodeID)
		case pb.ConfChangeRemoveNode:
			w.dropMember(cc.NodeID)
		case pb.ConfChangeUpdateNode:
			// Updates carry application data only; membership is unchanged.
		default:
			return fmt.Errorf("unexpected conf type %d", cc.Type)
		}
	}
	if len(w.cfg.Voters[0]) == 0 {
		return errNoVotersRemained
	}
	return nil
}

// asVoter adds id to the incoming voters, promoting it if it is a learner
// (or a staged learner) and creating its progress if it is new.
func (w *draft) asVoter(id uint64) {
	if pr, ok := w.prs[id]; ok {
		pr.IsLearner = false
		removeFromSet(&w.cfg.Learners, id)
		removeFromSet(&w.cfg.LearnersNext, id)
	} else {
		w.prs[id] = w.newProgress(false /* learner */)
	}
	w.cfg.Voters[0][id] = struct{}{}
}

// asLearner makes id a learner, creating its progress if it is new.
//
// A voter is demoted keeping its progress. If it still votes in the
// outgoing majority it cannot be a learner yet (Learners and Voters are
// disjoint), so the demotion is staged in LearnersNext and LeaveJoint
// completes it.
func (w *draft) asLearner(id uint64) {
	pr, ok := w.prs[id]
	switch {
	case !ok:
		w.prs[id] = w.newProgress(true /* learner */)
		addToSet(&w.cfg.Learners, id)
	case pr.IsLearner:
		// Already a learner: nothing to do.
	default:
		w.dropMember(id)
		w.prs[id] = pr // dropMember may have dropped it; a demotion keeps it
		if w.outgoingVoter(id) {
			addToSet(&w.cfg.LearnersNext, id)
		} else {
			pr.IsLearner = true
			addToSet(&w.cfg.Learners, id)
		}
	}
}

// dropMember takes id out of the incoming voters, the learners and the staged
// learners. Its progress is forgotten unless it still votes in the outgoing
// majority, whose quorum needs it until LeaveJoint. Removing an unknown
// peer is a no-op.
func (w *draft) dropMember(id uint64) {
	if _, ok := w.prs[id]; !ok {
		return
	}
	delete(w.cfg.Voters[0], id)
	removeFromSet(&w.cfg.Learners, id)
	removeFromSet(&w.cfg.LearnersNext, id)
	if !w.outgoingVoter(id) {
		delete(w.prs, id)
	}
}

// newProgress is the progress of a peer that a change adds. It starts
// probing at the leader's last index (at least 1, keeping Match < Next) and
// is marked recently active so that a CheckQuorum round right after the
// change does not count it as unreachable before it could answer.
func (w *draft) newProgress(learner bool) *tracker.Progress {
	return &tracker.Progress{
		Match:        0,
		Next:         max(w.lastIndex, 1),
		Inflights:    tracker.NewInflights(w.maxInflight, w.maxInflightBytes),
		IsLearner:    learner,
		RecentActive: true,
	}
}

// copySet returns a copy of s that shares no memory with it; nil stays nil.
func copySet(s map[uint64]struct{}) map[uint64]struct{} {
	if s == nil {
		return nil
	}
	cp := make(map[uint64]struct{}, len(s))
	for id := range s {
		cp[id] = struct{}{}
	}
	return cp
}

// addToSet adds id to *s, allocating the set on first use.
func addToSet(s *map[uint64]struct{}, id uint64) {
	if *s == nil {
		*s = make(map[uint64]struct{})
	}
	(*s)[id] = struct{}{}
}

// removeFromSet deletes id from *s and sets *s to nil once it is empty, so
// that an empty set is always represented as nil (which verifyTracker
// requires of LearnersNext outside joint configurations, and which keeps
// Config's String output free of empty "learners=()" parts).
func removeFromSet(s *map[uint64]struct{}, id uint64) {
	if *s == nil {
		return
	}
	delete(*s, id)
	if len(*s) == 0 {
		*s = nil
	}
}
