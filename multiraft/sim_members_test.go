package multiraft

import (
	"slices"
	"testing"

	"github.com/raftkit/raft"
	"github.com/raftkit/raft/raftpb"
)

// Membership changes in the simulation (simOpts.membership): in the faulty
// phase a group's leader now and then removes a member other than itself,
// and adds it back soon after (straight as a voter, or as a learner
// promoted by a later change), one change at a time per group, under the same
// faults as everything else; after healing, every group gets its missing
// member back before it counts as recovered. The removed host keeps its
// replica (not a member, it cannot campaign); clients send to members
// only. Each host compacts
// right after it applies a configuration change, as multiraft's
// documentation asks (raft refuses a snapshot that does not name the
// member, so a member added back behind the leader's first index could
// otherwise not catch up until a later compaction). Every invariant holds
// throughout: one leader per term, the same entry at each index on every
// host that applies it, matching logs, linearizable registers.

// memberChange proposes, at times, changes of the groups' membership at
// their leaders: a group missing a voter gets it back soon (promoting a
// learner, else adding the missing host, as a learner or straight as a
// voter at random), and now and then a complete group loses a member
// other than its leader. Groups stay short of a voter briefly, so that
// most of the run keeps three voters (with two, any fault stops the
// group, and every write it times out makes the linearizability check
// costlier).
func (s *sim) memberChange() {
	if !s.o.membership {
		return
	}
	for g := GroupID(1); g <= GroupID(s.o.groups); g++ {
		lead, st := s.leaderOf(g)
		if lead == nil {
			continue
		}
		cc := s.completion(lead, g, st)
		switch {
		case cc.NodeID != 0 && s.rng.Intn(100) >= 5:
			continue
		case cc.NodeID != 0 && cc.Type == raftpb.ConfChangeAddNode && !s.isLearner(lead, g, cc.NodeID) && s.rng.Intn(2) == 0:
			cc.Type = raftpb.ConfChangeAddLearnerNode
		case cc.NodeID == 0 && s.rng.Intn(1000) >= 3:
			continue
		case cc.NodeID == 0:
			others := slices.DeleteFunc(slices.Clone(st.Members), func(id HostID) bool { return id == lead.id })
			cc = raftpb.ConfChange{Type: raftpb.ConfChangeRemoveNode, NodeID: others[s.rng.Intn(len(others))]}
		}
		s.mix(0xcc, uint64(g), uint64(cc.Type), cc.NodeID)
		_ = lead.h.ProposeConfChange(g, cc)
	}
}

// completion is the change that brings g's configuration, as its leader
// lead applied it, back to every host a voter: promoting a learner, or
// adding a missing host; NodeID 0 when none is needed.
func (s *sim) completion(lead *simHost, g GroupID, st GroupStatus) raftpb.ConfChange {
	if l := lead.h.groups[g].confState().Learners; len(l) > 0 {
		return raftpb.ConfChange{Type: raftpb.ConfChangeAddNode, NodeID: l[0]}
	}
	return raftpb.ConfChange{Type: raftpb.ConfChangeAddNode, NodeID: s.missing(st.Members)}
}

// isLearner says whether id is a learner of g as lead applied it.
func (s *sim) isLearner(lead *simHost, g GroupID, id HostID) bool {
	return slices.Contains(lead.h.groups[g].confState().Learners, id)
}

// isMember says whether sh counts itself a member of g: clients send
// their operations only to members, as a real client's routing would (a
// removed host's operations could only time out, and porcupine's search
// grows with every operation whose outcome is unknown).
func (s *sim) isMember(sh *simHost, g GroupID) bool {
	st, err := sh.h.Status(g)
	return err == nil && slices.Contains(st.Members, sh.id)
}

// leaderOf returns a live host leading g, with its status, or nil.
func (s *sim) leaderOf(g GroupID) (*simHost, GroupStatus) {
	for _, sh := range s.hosts {
		if sh.down {
			continue
		}
		if st, err := sh.h.Status(g); err == nil && st.RaftState == raft.StateLeader {
			return sh, st
		}
	}
	return nil, GroupStatus{}
}

// missing returns a host not among members, or 0.
func (s *sim) missing(members []HostID) HostID {
	for _, sh := range s.hosts {
		if !slices.Contains(members, sh.id) {
			return sh.id
		}
	}
	return 0
}

// restoreMembers, after healing, asks g's leader every fifth round to
// promote a learner or add back a missing host; it reports whether every
// host sees every host as a voter of g.
func (s *sim) restoreMembers(g GroupID) bool {
	if !s.o.membership {
		return true
	}
	if lead, st := s.leaderOf(g); lead != nil && s.now%5 == 0 {
		if cc := s.completion(lead, g, st); cc.NodeID != 0 {
			_ = lead.h.ProposeConfChange(g, cc)
		}
	}
	for _, sh := range s.hosts {
		st, err := sh.h.Status(g)
		if err != nil || s.missing(st.Members) != 0 || len(sh.h.groups[g].confState().Learners) > 0 {
			return false
		}
	}
	return true
}

// noteConfChange counts the removals applied, and the additions of hosts
// removed before (not the bootstrap's), each the first time a host
// applies it, for the test to check that they happened.
func (s *sim) noteConfChange(g GroupID, e *raftpb.Entry) {
	if e.Type != raftpb.EntryConfChange {
		return
	}
	if s.removed == nil {
		s.removed = map[GroupID]map[uint64]bool{}
		s.confSeen = map[GroupID]uint64{}
	}
	if e.Index <= s.confSeen[g] {
		return // counted when the first host applied it
	}
	s.confSeen[g] = e.Index
	var cc raftpb.ConfChange
	if cc.Unmarshal(e.Data) != nil {
		return
	}
	if s.removed[g] == nil {
		s.removed[g] = map[uint64]bool{}
	}
	switch {
	case cc.Type == raftpb.ConfChangeRemoveNode:
		s.removals++
		s.removed[g][cc.NodeID] = true
	case cc.Type == raftpb.ConfChangeAddLearnerNode && s.removed[g][cc.NodeID]:
		s.learners++
	case cc.Type == raftpb.ConfChangeAddNode && s.removed[g][cc.NodeID]:
		s.additions++
		delete(s.removed[g], cc.NodeID)
	}
}

// Membership changes, one at a time per group, keep every invariant, and
// the removed members come back.
func TestSimMultiGroupMembership(t *testing.T) {
	runSimSeeds(t, simOpts{membership: true})
}
