package multiraft

import (
	"slices"

	"github.com/raftkit/raft/raftpb"
)

// ConfChangeFilter may be implemented by the Application to refuse
// committed configuration changes. A refused change is not applied to raft
// (RawNode.ApplyConfChange is not called for it, as raft allows): the entry
// stays in the log and still goes to Apply, but the group's configuration
// does not change. RefuseConfChange is called on the worker holding group
// g, for every committed change in log order, with cs, the group's
// configuration just before it (IDs sorted). Every replica of g must decide alike: the
// decision may depend on cc and cs only, which are the same on every
// replica at that point of the log (a restart replays the change through
// the filter again).
type ConfChangeFilter interface {
	RefuseConfChange(g GroupID, cc raftpb.ConfChangeV2, cs raftpb.ConfState) bool
}

// refusedConfChange reports whether the application refuses cc in g.
func (h *Host) refusedConfChange(g *group, cc raftpb.ConfChangeI) bool {
	f, ok := h.cfg.App.(ConfChangeFilter)
	if !ok {
		return false
	}
	cs := g.confState()
	slices.Sort(cs.Learners)
	slices.Sort(cs.LearnersNext)
	return f.RefuseConfChange(g.id, cc.AsV2(), cs)
}
