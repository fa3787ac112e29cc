package rafttest

import (
	"errors"

	"github.com/raftkit/raft"
	pb "github.com/raftkit/raft/raftpb"
)

// historyStorage is a MemoryStorage whose Snapshot is the node's latest
// applied state (the last element of its History) rather than whatever
// MemoryStorage last recorded. A leader that must catch up a follower then
// sends exactly the state it has applied, which is what scenarios expect
// to see in a MsgSnap.
type historyStorage struct {
	*raft.MemoryStorage
	latest func() pb.Snapshot
}

var _ Storage = historyStorage{}

func newHistoryStorage(latest func() pb.Snapshot) historyStorage {
	return historyStorage{MemoryStorage: raft.NewMemoryStorage(), latest: latest}
}

// Snapshot implements raft.Storage.
func (s historyStorage) Snapshot() (pb.Snapshot, error) { return s.latest(), nil }

var errSnapshotAndEntries = errors.New("can't apply snapshot and entries at the same time")

// persist makes a write durable on n's storage: the HardState first, then
// either the snapshot or the entries. A snapshot also becomes the node's
// latest applied state.
func persist(n *Node, hs pb.HardState, ents []pb.Entry, snap pb.Snapshot) error {
	if !raft.IsEmptyHardState(hs) {
		if err := n.SetHardState(hs); err != nil {
			return err
		}
	}
	if raft.IsEmptySnap(snap) {
		return n.Append(ents)
	}
	if len(ents) > 0 {
		return errSnapshotAndEntries
	}
	if err := n.ApplySnapshot(snap); err != nil {
		return err
	}
	n.History = append(n.History, snap)
	return nil
}

// apply runs committed entries through the node's state machine, which
// simply concatenates payloads: each entry extends the latest state in
// History by its data (a conf change's context), and moves the recorded
// index, term and configuration forward. Conf changes are applied to the
// RawNode.
func apply(n *Node, ents []pb.Entry) error {
	for _, e := range ents {
		prev := n.History[len(n.History)-1]
		next := pb.Snapshot{Data: append([]byte(nil), prev.Data...)}
		next.Metadata.Index, next.Metadata.Term = e.Index, e.Term
		next.Metadata.ConfState = prev.Metadata.ConfState
		payload, cs, err := applyEntry(n.RawNode, e)
		if err != nil {
			return err
		}
		next.Data = append(next.Data, payload...)
		if cs != nil {
			next.Metadata.ConfState = *cs
		}
		n.History = append(n.History, next)
	}
	return nil
}

// applyEntry applies one entry and returns the bytes the state machine
// appends for it, plus the new configuration if the entry changed it.
func applyEntry(rn *raft.RawNode, e pb.Entry) ([]byte, *pb.ConfState, error) {
	var cc pb.ConfChangeI
	var context []byte
	switch e.Type {
	case pb.EntryConfChange:
		var v1 pb.ConfChange
		if err := v1.Unmarshal(e.Data); err != nil {
			return nil, nil, err
		}
		cc, context = v1, v1.Context
	case pb.EntryConfChangeV2:
		var v2 pb.ConfChangeV2
		if err := v2.Unmarshal(e.Data); err != nil {
			return nil, nil, err
		}
		cc, context = v2, v2.Context
	default:
		return e.Data, nil, nil
	}
	return context, rn.ApplyConfChange(cc), nil
}
