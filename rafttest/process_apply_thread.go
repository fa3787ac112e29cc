package rafttest

import (
	"testing"

	"github.com/cockroachdb/datadriven"

	"github.com/raftkit/raft"
	pb "github.com/raftkit/raft/raftpb"
)

// cmdProcessApplyThread: process-apply-thread ID... — each node's apply
// thread applies one queued batch of committed entries.
func cmdProcessApplyThread(env *InteractionEnv, t *testing.T, d datadriven.TestData) error {
	return env.forEachNode(env.bareNodeArgs(t, d), "processing apply thread", env.ProcessApplyThread)
}

// ProcessApplyThread takes the oldest queued MsgStorageApply of the node at
// index idx and carries it out, as that node's apply thread would.
func (env *InteractionEnv) ProcessApplyThread(idx int) error {
	n, err := env.node(idx)
	if err != nil {
		return err
	}
	if len(n.ApplyWork) == 0 {
		env.Output.WriteString("no apply work to perform")
		return nil
	}
	m := n.ApplyWork[0]
	n.ApplyWork = n.ApplyWork[1:]
	return env.runStorageWork(m, func(m pb.Message) error { return apply(n, m.Entries) })
}

// runStorageWork prints a storage thread's work item (without its
// responses), performs it, then prints and queues the responses. If the
// work fails, the responses are withheld: what they acknowledge did not
// happen.
func (env *InteractionEnv) runStorageWork(m pb.Message, work func(pb.Message) error) error {
	resps := m.Responses
	m.Responses = nil
	env.Output.WriteString("Processing:\n" + raft.DescribeMessage(m, formatData) + "\n")
	if err := work(m); err != nil {
		return err
	}
	env.Output.WriteString("Responses:\n")
	for _, r := range resps {
		env.Output.WriteString(raft.DescribeMessage(r, formatData) + "\n")
	}
	env.Messages = append(env.Messages, resps...)
	return nil
}
