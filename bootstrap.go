package raft

import (
	"errors"

	pb "github.com/raftkit/raft/raftpb"
)

// Bootstrap gives a brand-new RawNode its initial configuration: the log
// starts with one committed ConfChangeAddNode entry per peer, at term 1. It
// returns an error if peers is empty or if the Storage is not empty.
//
// The entries are not persisted yet: the first Ready hands them out, along
// with a HardState, and its committed entries are those same changes, which
// the application applies like any others (through ApplyConfChange).
//
// Preparing the Storage instead is recommended: a snapshot at a non-zero
// index (index 1, term 1 will do) whose ConfState is the initial
// configuration.
func (rn *RawNode) Bootstrap(peers []Peer) error {
	if len(peers) == 0 {
		return errors.New("must provide at least one peer to Bootstrap")
	}
	last, err := rn.raft.log.storage.LastIndex()
	if err != nil {
		return err
	}
	if last != 0 {
		return errors.New("can't bootstrap a nonempty Storage")
	}
	ents, err := bootstrapEntries(peers)
	if err != nil {
		return err
	}

	// Nothing is durable yet, so the first Ready must report the HardState
	// even if it looks unchanged.
	rn.reported.hard = emptyState
	r := rn.raft
	r.toFollower(1, None /* lead */)
	r.log.write(ents...)
	// The changes count as committed (every peer starts from the same
	// entries) but not applied: the application sees them in the first
	// Ready's CommittedEntries. They are also applied right away, so that
	// the node can campaign before that Ready is handled. This has to follow
	// the append, so that new progresses start after these entries instead
	// of trying to replicate them.
	r.log.committed = uint64(len(ents))
	for _, p := range peers {
		r.applyConfigChange(pb.ConfChange{Type: pb.ConfChangeAddNode, NodeID: p.ID}.AsV2())
	}
	return nil
}

// bootstrapEntries returns the initial log for peers: entry i (from 1) adds
// the i-th peer, with the peer's context.
func bootstrapEntries(peers []Peer) ([]pb.Entry, error) {
	ents := make([]pb.Entry, 0, len(peers))
	for _, p := range peers {
		cc := pb.ConfChange{Type: pb.ConfChangeAddNode, NodeID: p.ID, Context: p.Context}
		data, err := cc.Marshal()
		if err != nil {
			return nil, err
		}
		ents = append(ents, pb.Entry{
			Type:  pb.EntryConfChange,
			Term:  1,
			Index: uint64(len(ents) + 1),
			Data:  data,
		})
	}
	return ents, nil
}
