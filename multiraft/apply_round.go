package multiraft

import "github.com/raftkit/raft/raftpb"

// GroupEntries is one group's committed entries, in log order, as handed
// to a RoundApplication.
type GroupEntries struct {
	Group   GroupID
	Entries []raftpb.Entry
}

// RoundApplication is an Application that takes a worker round's
// committed entries, of every group of the round, in one call instead of
// one Apply per group: an application writing to one store can then make
// one write of them (one Pebble batch, say) instead of one per group. A
// host whose App implements it calls ApplyRound, never Apply.
//
// In a round, the host hands each group's snapshot to Restore and applies
// its configuration changes to raft first, then calls ApplyRound once with
// the groups that have committed entries (each group at most once, in the
// round's order), then ReadIndexDone for the groups with answered reads;
// only then does it advance the groups' raft state. Different workers'
// rounds hold different groups and may call ApplyRound concurrently.
type RoundApplication interface {
	Application
	// ApplyRound hands over the round's committed entries. The slices
	// are valid only during the call.
	ApplyRound(batch []GroupEntries)
}
