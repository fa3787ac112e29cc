package transport

import (
	"context"

	"github.com/raftkit/raft"
	"github.com/raftkit/raft/raftpb"
)

// NodeRaft adapts a raft.Node to Raft: Process steps the message into the
// node; the reports go to the node's own ReportUnreachable and
// ReportSnapshot. A stopped node refuses messages with raft.ErrStopped.
type NodeRaft struct {
	raft.Node
}

// Process steps m into the node.
func (n NodeRaft) Process(ctx context.Context, m raftpb.Message) error {
	return n.Step(ctx, m)
}

var _ Raft = NodeRaft{}
