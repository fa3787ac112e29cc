package rafttest

import (
	"fmt"
	"testing"

	"github.com/cockroachdb/datadriven"

	"github.com/raftkit/raft"
	pb "github.com/raftkit/raft/raftpb"
)

// cmdProcessReady: process-ready ID... — handles one Ready on each node.
func cmdProcessReady(env *InteractionEnv, t *testing.T, d datadriven.TestData) error {
	return env.forEachNode(env.bareNodeArgs(t, d), "handling Ready", env.ProcessReady)
}

// ProcessReady takes one Ready from the node at index idx and handles it
// the way the test application does, printing it as it goes.
//
// The Ready is taken without consulting HasReady, so an idle node prints
// an empty Ready. With synchronous storage the node persists, applies,
// queues its messages and advances, in that order. With asynchronous
// storage writes the Ready is only printed and its messages queued: those
// for the append and apply threads go to the node's work queues, where the
// process-*-thread directives pick them up.
func (env *InteractionEnv) ProcessReady(idx int) error {
	n, err := env.node(idx)
	if err != nil {
		return err
	}
	rd := n.Ready()
	env.Output.WriteString(raft.DescribeReady(rd, formatData))

	async := n.Config.AsyncStorageWrites
	if !async {
		if err := persist(n, rd.HardState, rd.Entries, rd.Snapshot); err != nil {
			return err
		}
		if err := apply(n, rd.CommittedEntries); err != nil {
			return err
		}
	}
	for _, m := range rd.Messages {
		if !raft.IsLocalMsgTarget(m.To) {
			env.Messages = append(env.Messages, m)
			continue
		}
		if !async {
			return fmt.Errorf("node %d: message to a storage thread without async storage writes: %s",
				idx+1, raft.DescribeMessage(m, formatData))
		}
		switch m.Type {
		case pb.MsgStorageAppend:
			n.AppendWork = append(n.AppendWork, m)
		case pb.MsgStorageApply:
			n.ApplyWork = append(n.ApplyWork, m)
		default:
			return fmt.Errorf("node %d: unexpected message type %s for a storage thread", idx+1, m.Type)
		}
	}
	if !async {
		n.Advance(rd)
	}
	return nil
}
