package rafttest

import (
	"testing"

	"github.com/cockroachdb/datadriven"

	pb "github.com/raftkit/raft/raftpb"
)

// cmdProcessAppendThread: process-append-thread ID... — each node's
// append thread performs one queued write.
func cmdProcessAppendThread(env *InteractionEnv, t *testing.T, d datadriven.TestData) error {
	return env.forEachNode(env.bareNodeArgs(t, d), "processing append thread", env.ProcessAppendThread)
}

// ProcessAppendThread takes the oldest queued MsgStorageAppend of the node at
// index idx and carries it out, as that node's append thread would.
//
// The write (HardState, then snapshot or entries) is made durable before
// the message's responses are released onto the network queue, which is
// the guarantee the responses stand for.
func (env *InteractionEnv) ProcessAppendThread(idx int) error {
	n, err := env.node(idx)
	if err != nil {
		return err
	}
	if len(n.AppendWork) == 0 {
		env.Output.WriteString("no append work to perform")
		return nil
	}
	m := n.AppendWork[0]
	n.AppendWork = n.AppendWork[1:]
	return env.runStorageWork(m, func(m pb.Message) error {
		hs := pb.HardState{Term: m.Term, Vote: m.Vote, Commit: m.Commit}
		var snap pb.Snapshot
		if m.Snapshot != nil {
			snap = *m.Snapshot
		}
		return persist(n, hs, m.Entries, snap)
	})
}
