package rafttest

import (
	"fmt"
	"math"
	"testing"

	"github.com/cockroachdb/datadriven"

	"github.com/raftkit/raft"
	pb "github.com/raftkit/raft/raftpb"
)

// cmdRestart: restart ID [commit=N] — crashes the node and starts it
// again from what it persisted. commit=N lowers the durable commit index to
// N first: what a crash loses when a write kept its entries but not the
// HardState that came with them, or when commit-only HardStates
// (MustSync=false) were never synced. Unknown keys are ignored.
func cmdRestart(env *InteractionEnv, t *testing.T, d datadriven.TestData) error {
	idx := env.firstArgNode(t, d)
	commit := int64(-1)
	for _, arg := range d.CmdArgs[1:] {
		for i := range arg.Vals {
			if arg.Key == "commit" {
				arg.Scan(t, i, &commit)
			}
		}
	}
	return env.Restart(idx, commit)
}

// Restart crashes the node at index idx and creates it anew from its
// durable state: the log's entries and HardState, and the application's
// state at the index the log starts after (its snapshot). Everything else
// is lost: the messages in flight to it, the work queued for its storage
// threads, and what it applied beyond the snapshot, which raft hands out
// again. A commit of 0 or more first lowers the durable commit index to
// that value, which must be at least the snapshot index.
//
// The restarted node keeps its Config, except that Applied is the
// snapshot index. The safety checker forgets the node's commit index, which
// may legitimately go back across a crash.
func (env *InteractionEnv) Restart(idx int, commit int64) error {
	n, err := env.node(idx)
	if err != nil {
		return err
	}
	snap, ents, hs, err := durableState(n)
	if err != nil {
		return err
	}
	if commit >= 0 {
		if c := uint64(commit); c < snap.Metadata.Index || c > hs.Commit {
			return fmt.Errorf("commit=%d is outside [%d, %d]: below the snapshot or above the durable commit index",
				commit, snap.Metadata.Index, hs.Commit)
		}
		hs.Commit = uint64(commit)
	}
	id := uint64(idx + 1)
	s := newHistoryStorage(func() pb.Snapshot {
		h := env.Nodes[id-1].History
		return h[len(h)-1]
	})
	if snap.Metadata.Index > 0 {
		if err := s.ApplySnapshot(snap); err != nil {
			return err
		}
	}
	if err := s.Append(ents); err != nil {
		return err
	}
	if err := s.SetHardState(hs); err != nil {
		return err
	}
	cfg := *n.Config
	cfg.Storage, cfg.Applied = s, snap.Metadata.Index
	rn, err := raft.NewRawNode(&cfg)
	if err != nil {
		return err
	}
	rn.SetFastFailover(n.FastFailover())
	env.Messages, _ = dropMsgsTo(env.Messages, id)
	*n = Node{RawNode: rn, Storage: s, Config: &cfg, History: append(n.History, snap)}
	led := env.ledger()
	led.commits[id] = rn.BasicStatus().Commit
	return nil
}

// durableState reads what node n persisted: its log's entries and
// HardState, and the application state at the index its log starts after,
// which is the latest state in History at that index.
func durableState(n *Node) (pb.Snapshot, []pb.Entry, pb.HardState, error) {
	first, last, err := storageBounds(n.Storage)
	if err != nil {
		return pb.Snapshot{}, nil, pb.HardState{}, err
	}
	hs, _, err := n.Storage.InitialState()
	if err != nil {
		return pb.Snapshot{}, nil, pb.HardState{}, err
	}
	var ents []pb.Entry
	if last >= first {
		if ents, err = n.Storage.Entries(first, last+1, math.MaxUint64); err != nil {
			return pb.Snapshot{}, nil, pb.HardState{}, err
		}
	}
	for i := len(n.History) - 1; i >= 0; i-- {
		if snap := n.History[i]; snap.Metadata.Index == first-1 {
			return snap, ents, hs, nil
		}
	}
	return pb.Snapshot{}, nil, pb.HardState{}, fmt.Errorf("no applied state at index %d, where the log starts", first-1)
}

// dropMsgsTo removes the messages addressed to id from msgs, returning the
// rest and how many were dropped.
func dropMsgsTo(msgs []pb.Message, id uint64) ([]pb.Message, int) {
	kept := msgs[:0]
	for _, m := range msgs {
		if m.To != id {
			kept = append(kept, m)
		}
	}
	return kept, len(msgs) - len(kept)
}
