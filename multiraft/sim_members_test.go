package multiraft

import (
	"slices"
	"testing"

	"github.com/raftkit/raft"
	"github.com/raftkit/raft/raftpb"
)

// Membership changes in the simulation (simOpts.membership): in the faulty
// phase a group's leader now and then removes a member other than itself,
// and adds it back later, one change at a time per group, under the same
// faults as everything else; after healing, every group gets its missing
// member back before it counts as recovered. The removed host keeps its
// replica (not a member, it cannot campaign) and its clients, whose
// proposals and reads it forwards to the leader. Each host compacts
// right after it applies a configuration change, as multiraft's
// documentation asks (raft refuses a snapshot that does not name the
// member, so a member added back behind the leader's first index could
// otherwise not catch up until a later compaction). Every invariant holds
// throughout: one leader per term, the same entry at each index on every
// host that applies it, matching logs, linearizable registers.

// memberChange proposes, at times, a change of one group's membership at
// its leader: the removal of a member other than the leader when all hosts
// are members, else adding back the missing host.
func (s *sim) memberChange() {
	if !s.o.membership || s.rng.Intn(1000) >= 15 {
		return
	}
	g := GroupID(1 + s.rng.Intn(s.o.groups))
	lead, st := s.leaderOf(g)
	if lead == nil {
		return
	}
	cc := raftpb.ConfChange{Type: raftpb.ConfChangeAddNode, NodeID: s.missing(st.Members)}
	if cc.NodeID == 0 {
		others := slices.DeleteFunc(slices.Clone(st.Members), func(id HostID) bool { return id == lead.id })
		cc = raftpb.ConfChange{Type: raftpb.ConfChangeRemoveNode, NodeID: others[s.rng.Intn(len(others))]}
	}
	s.mix(0xcc, uint64(g), uint64(cc.Type), cc.NodeID)
	_ = lead.h.ProposeConfChange(g, cc)
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

// restoreMembers, after healing, asks g's leader every fifth round to add
// back a missing host; it reports whether every host sees every host as a
// member of g.
func (s *sim) restoreMembers(g GroupID) bool {
	if !s.o.membership {
		return true
	}
	if lead, st := s.leaderOf(g); lead != nil && s.now%5 == 0 {
		if id := s.missing(st.Members); id != 0 {
			_ = lead.h.ProposeConfChange(g, raftpb.ConfChange{Type: raftpb.ConfChangeAddNode, NodeID: id})
		}
	}
	for _, sh := range s.hosts {
		st, err := sh.h.Status(g)
		if err != nil || s.missing(st.Members) != 0 {
			return false
		}
	}
	return true
}

// noteConfChange counts the removals applied, and the additions of hosts
// removed before (not the bootstrap's), as host 1 applies them, for the
// test to check that both happened.
func (s *sim) noteConfChange(host HostID, g GroupID, e *raftpb.Entry) {
	if host != 1 || e.Type != raftpb.EntryConfChange {
		return
	}
	var cc raftpb.ConfChange
	if cc.Unmarshal(e.Data) != nil {
		return
	}
	if s.removed == nil {
		s.removed = map[GroupID]map[uint64]bool{}
	}
	if s.removed[g] == nil {
		s.removed[g] = map[uint64]bool{}
	}
	switch {
	case cc.Type == raftpb.ConfChangeRemoveNode:
		s.removals++
		s.removed[g][cc.NodeID] = true
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
