package raft

import (
	"fmt"

	"github.com/raftkit/raft/confchange"
	pb "github.com/raftkit/raft/raftpb"
	"github.com/raftkit/raft/tracker"
)

// isConfChangeEntry reports whether e carries a configuration change.
func isConfChangeEntry(e *pb.Entry) bool {
	return e.Type == pb.EntryConfChange || e.Type == pb.EntryConfChangeV2
}

// decodeConfChange decodes the configuration change e carries; it returns
// nil for other entries.
func decodeConfChange(e *pb.Entry) (pb.ConfChangeI, error) {
	switch e.Type {
	case pb.EntryConfChange:
		var cc pb.ConfChange
		if err := cc.Unmarshal(e.Data); err != nil {
			return nil, fmt.Errorf("decoding a ConfChange: %w", err)
		}
		return cc, nil
	case pb.EntryConfChangeV2:
		var cc pb.ConfChangeV2
		if err := cc.Unmarshal(e.Data); err != nil {
			return nil, fmt.Errorf("decoding a ConfChangeV2: %w", err)
		}
		return cc, nil
	}
	return nil, nil
}

// screenConfChanges vets the configuration changes among proposed entries,
// in order. An accepted change becomes the pending one; a refused one is
// replaced by an empty normal entry, so that the rest of the proposal keeps
// its place. Step has checked that every change decodes.
func (r *raft) screenConfChanges(ents []pb.Entry) {
	for i := range ents {
		cc, err := decodeConfChange(&ents[i])
		if cc == nil || err != nil {
			continue
		}
		if refusal := r.confChangeRefusal(cc); refusal != "" && !r.disableConfChangeValidation {
			r.logger.Infof("%x ignoring conf change %v at config %s: %s", r.id, cc, r.trk.Config, refusal)
			ents[i] = pb.Entry{Type: pb.EntryNormal}
			continue
		}
		r.pendingConfIndex = r.log.last() + uint64(i) + 1
	}
}

// confChangeRefusal returns why the leader should not accept cc now, or "".
// The checks run against the active configuration, which may trail the log;
// see Config.DisableConfChangeValidation.
func (r *raft) confChangeRefusal(cc pb.ConfChangeI) string {
	joint := len(r.trk.Config.Voters[1]) > 0
	leaves := len(cc.AsV2().Changes) == 0
	switch {
	case r.pendingConfIndex > r.log.applied:
		return fmt.Sprintf("possible unapplied conf change at index %d (applied to %d)", r.pendingConfIndex, r.log.applied)
	case joint && !leaves:
		return "must transition out of joint config first"
	case !joint && leaves:
		return "not in joint state; refusing empty conf change"
	}
	return ""
}

// applyConfigChange makes cc, a committed change the application is applying,
// the active configuration, and returns it as a ConfState. A change that
// does not apply to the active configuration panics: validation at proposal
// time keeps such changes out of the log unless it was disabled, and then
// the application took responsibility for them.
func (r *raft) applyConfigChange(cc pb.ConfChangeV2) pb.ConfState {
	cfg, prs, err := r.computeConfChange(cc)
	if err != nil {
		panic(fmt.Sprintf("raft: %x applying conf change %v to %s: %v", r.id, cc, r.trk.Config, err))
	}
	return r.adoptConfig(cfg, prs)
}

// computeConfChange computes the configuration cc leads to.
func (r *raft) computeConfChange(cc pb.ConfChangeV2) (tracker.Config, tracker.ProgressMap, error) {
	changer := confchange.Changer{Tracker: r.trk, LastIndex: r.log.last()}
	if cc.LeaveJoint() {
		return changer.LeaveJoint()
	}
	if autoLeave, ok := cc.EnterJoint(); ok {
		return changer.EnterJoint(autoLeave, cc.Changes...)
	}
	return changer.Simple(cc.Changes...)
}

// adoptConfig installs a new configuration and progress map (from a
// ConfState or an applied change) and reacts to it: a removed or demoted
// leader may step down; otherwise a leader commits what the new quorum
// allows and reaches out to new members. It returns the new ConfState.
func (r *raft) adoptConfig(cfg tracker.Config, prs tracker.ProgressMap) pb.ConfState {
	r.trk.Config, r.trk.Progress = cfg, prs
	r.order = tracker.MakeMemberOrder(&r.trk)
	r.logger.Infof("%x switched to configuration %s", r.id, r.trk.Config)
	cs := r.trk.ConfState()
	self, member := r.trk.Progress[r.id]
	r.isLearner = member && self.IsLearner

	if (!member || r.isLearner) && r.state == StateLeader {
		if r.stepDownOnRemoval {
			r.toFollower(r.Term, None /* lead */)
		}
		return cs
	}
	if r.state != StateLeader || len(cs.Voters) == 0 {
		return cs
	}
	r.replicateToNewConfig()
	if _, ok := r.trk.Config.Voters.IDs()[r.leadTransferee]; !ok && r.leadTransferee != None {
		// The transfer target is no longer a voter.
		r.cancelTransfer()
	}
	return cs
}

// replicateToNewConfig commits what the new quorum allows, broadcasting the
// new commit index if it moved; otherwise it probes any member that can be
// sent something, so that new members need not wait for a heartbeat.
func (r *raft) replicateToNewConfig() {
	if r.advanceCommit() {
		r.replicateAll()
		return
	}
	r.order.Visit(func(id uint64, pr *tracker.Progress) {
		if id != r.id {
			r.replicate(id, pr, false /* sendIfEmpty */)
		}
	})
}

// mustMatchConfState panics unless cs1 and cs2 describe the same
// configuration: a restored configuration must read back as stored.
func mustMatchConfState(l Logger, cs1, cs2 pb.ConfState) {
	if err := cs1.Equivalent(cs2); err != nil {
		l.Panic(err)
		panic(err) // in case the logger does not
	}
}
