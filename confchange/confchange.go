// Package confchange turns membership changes into new Raft configurations.
//
// It is pure: every entry point reads the configuration and progress held by
// a Changer, works on private copies, checks the result against the
// invariants listed on verifyTracker, and either returns the new
// configuration and progress map or an error. The Changer's tracker is never
// modified, so a rejected change leaves no trace and the caller decides when
// (and whether) to install the result.
//
// Two styles of change are supported (Raft thesis §4.1 and §4.3):
//
//   - Simple changes alter the voters by at most one member, which keeps any
//     majority of the old configuration overlapping any majority of the new
//     one, so they take effect in one step.
//   - Joint changes pass through C_{old,new}: EnterJoint keeps the old voters
//     as an outgoing majority next to the new incoming one, and LeaveJoint
//     later drops the outgoing half.
package confchange

import (
	"errors"
	"fmt"

	"github.com/raftkit/raft/quorum"
	pb "github.com/raftkit/raft/raftpb"
	"github.com/raftkit/raft/tracker"
)

// Changer computes configuration changes against the configuration and
// progress held in Tracker. Its methods take a value receiver and never
// modify Tracker: they return a fresh Config and ProgressMap that the caller
// installs if it wants them.
type Changer struct {
	// Tracker supplies the current configuration and progress, and the
	// MaxInflight and MaxInflightBytes limits given to peers that a change
	// adds.
	Tracker tracker.ProgressTracker
	// LastIndex is the index of the last entry in the leader's log. A peer
	// added by a change starts probing at max(LastIndex, 1).
	LastIndex uint64
}

// The error texts below are part of the compatibility contract with
// etcd/raft; they are unexported so that the package's API stays the same.
var (
	errAlreadyJoint     = errors.New("config is already joint")
	errZeroVoterJoint   = errors.New("can't make a zero-voter config joint")
	errNotJoint         = errors.New("can't leave a non-joint config")
	errSimpleInJoint    = errors.New("can't apply simple config change in joint config")
	errTooManyVoters    = errors.New("more than one voter changed without entering joint config")
	errNoVotersRemained = errors.New("removed all voters")
)

// EnterJoint moves a non-joint configuration C_old into the joint
// configuration C_{new,old} of the Raft thesis (§4.3): the current voters
// become the outgoing majority Voters[1], and the changes ccs are applied to
// the incoming majority Voters[0]. autoLeave is recorded in the result so
// that raft leaves the joint state by itself once it has been committed.
//
// It fails if the configuration is already joint, if it has no voters (an
// empty configuration can grow by simple changes only), or if the changes
// would leave the incoming majority empty.
func (c Changer) EnterJoint(autoLeave bool, ccs ...pb.ConfChangeSingle) (tracker.Config, tracker.ProgressMap, error) {
	w, err := c.start()
	if err != nil {
		return failed(err)
	}
	if w.inJoint() {
		return failed(errAlreadyJoint)
	}
	if len(w.cfg.Voters[0]) == 0 {
		return failed(errZeroVoterJoint)
	}
	// The old voters keep deciding alongside the new ones until LeaveJoint.
	w.cfg.Voters[1] = quorum.MajorityConfig{}
	for id := range w.cfg.Voters[0] {
		w.cfg.Voters[1][id] = struct{}{}
	}
	if err := w.applyAll(ccs); err != nil {
		return failed(err)
	}
	w.cfg.AutoLeave = autoLeave
	return w.finish()
}

// LeaveJoint moves a joint configuration C_{new,old} to C_new (Raft thesis
// §4.3): the outgoing majority Voters[1] is dropped, voters that were
// demoted while joint (LearnersNext) become learners, and the progress of
// peers that are now in neither the voters nor the learners is forgotten.
// It fails if the configuration is not joint.
func (c Changer) LeaveJoint() (tracker.Config, tracker.ProgressMap, error) {
	w, err := c.start()
	if err != nil {
		return failed(err)
	}
	if !w.inJoint() {
		return failed(errNotJoint)
	}
	// A staged learner could not be a learner while it still voted in the
	// outgoing half; with that half gone the demotion takes effect, keeping
	// the peer's replication progress.
	for id := range w.cfg.LearnersNext {
		addToSet(&w.cfg.Learners, id)
		w.prs[id].IsLearner = true
	}
	w.cfg.LearnersNext = nil
	for id := range w.cfg.Voters[1] {
		_, voter := w.cfg.Voters[0][id]
		_, learner := w.cfg.Learners[id]
		if !voter && !learner {
			delete(w.prs, id)
		}
	}
	w.cfg.Voters[1] = nil
	w.cfg.AutoLeave = false
	return w.finish()
}

// Simple applies ccs to a non-joint configuration in one step. Taken
// together the changes may add or remove at most one voter (promotions and
// demotions count as such); learners are unrestricted. It fails if the
// configuration is joint, if more than one voter would change, or if no
// voter would remain.
func (c Changer) Simple(ccs ...pb.ConfChangeSingle) (tracker.Config, tracker.ProgressMap, error) {
	w, err := c.start()
	if err != nil {
		return failed(err)
	}
	if w.inJoint() {
		return failed(errSimpleInJoint)
	}
	if err := w.applyAll(ccs); err != nil {
		return failed(err)
	}
	// With two or more voters changed, a majority of the old voters and a
	// majority of the new ones need not share a member, so two leaders could
	// be elected in the same term.
	if symmetricDifference(c.Tracker.Voters[0], w.cfg.Voters[0]) > 1 {
		return failed(errTooManyVoters)
	}
	return w.finish()
}

// failed is the result of a change that was refused.
func failed(err error) (tracker.Config, tracker.ProgressMap, error) {
	return tracker.Config{}, nil, err
}

// symmetricDifference counts the IDs that are in exactly one of a and b.
func symmetricDifference(a, b quorum.MajorityConfig) int {
	n := 0
	for id := range a {
		if _, ok := b[id]; !ok {
			n++
		}
	}
	for id := range b {
		if _, ok := a[id]; !ok {
			n++
		}
	}
	return n
}

// Describe renders changes for humans, each as its type with the node ID in
// parentheses, separated by spaces: "ConfChangeAddNode(2) ConfChangeRemoveNode(3)".
func Describe(ccs ...pb.ConfChangeSingle) string {
	var b []byte
	for i, cc := range ccs {
		if i > 0 {
			b = append(b, ' ')
		}
		b = fmt.Appendf(b, "%s(%d)", cc.Type, cc.NodeID)
	}
	return string(b)
}
