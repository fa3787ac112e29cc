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
// A round calls ApplyRound at most twice. While the round's save runs, it
// hands over the committed entries that were durable before the round
// (the save cannot change them); after the save, those the round appended,
// after handing each group's snapshot to Restore. Each call holds every
// group at most once, in the round's order, with the group's
// configuration changes already applied to raft; then come ReadIndexDone
// for the groups with answered reads, and only then does the host advance
// the groups' raft state. Different workers' rounds hold different groups
// and may call ApplyRound concurrently; a call may also run concurrently
// with Storage.SaveBatch. With HostConfig.ApplyQueue, the calls (then
// ReadIndexDone) come from the host's apply goroutine, one at a time in
// round order, after the host advanced the groups' raft state, and
// concurrently with later rounds.
type RoundApplication interface {
	Application
	// ApplyRound hands over the round's committed entries. The batch
	// slice is valid only during the call.
	ApplyRound(batch []GroupEntries)
}
