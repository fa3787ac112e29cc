package rafttest

import (
	"testing"

	"github.com/cockroachdb/datadriven"

	"github.com/raftkit/raft"
	pb "github.com/raftkit/raft/raftpb"
)

// cmdSendSnapshot: send-snapshot FROM TO — queues (without delivering) a
// MsgSnap carrying FROM's latest applied state.
func cmdSendSnapshot(env *InteractionEnv, t *testing.T, d datadriven.TestData) error {
	idxs := env.bareNodeArgs(t, d)
	if len(idxs) != 2 {
		d.Fatalf(t, "send-snapshot: expected two node IDs, got %d", len(idxs))
	}
	return env.SendSnapshot(idxs[0], idxs[1])
}

// SendSnapshot queues, undelivered, a MsgSnap from the node at fromIdx to the
// node at toIdx carrying fromIdx's stored snapshot.
//
// The message goes out at the sender's current term, as if the sender
// were the leader, whatever its role: tests use this to hand a follower a
// snapshot it would not otherwise get. It is queued and printed, not
// delivered.
func (env *InteractionEnv) SendSnapshot(fromIdx, toIdx int) error {
	from, err := env.node(fromIdx)
	if err != nil {
		return err
	}
	snap, err := from.Snapshot()
	if err != nil {
		return err
	}
	m := pb.Message{
		Type:     pb.MsgSnap,
		From:     uint64(fromIdx + 1),
		To:       uint64(toIdx + 1),
		Term:     from.BasicStatus().Term,
		Snapshot: &snap,
	}
	env.Messages = append(env.Messages, m)
	env.Output.WriteString(raft.DescribeMessage(m, nil))
	return nil
}
