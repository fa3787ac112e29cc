package multiraft

import (
	"testing"

	"github.com/raftkit/raft/raftpb"
)

// A follower that steps a read round's heartbeat and a quiescing
// heartbeat in the same round leaves out only the plain answer: the one
// echoing the read context confirms the round, and without it a read
// through that member waited for its whole timeout (issue 16).
func TestQuiesceAnswerKeepsReadConfirmation(t *testing.T) {
	o := newOutbox(2)
	g := &group{id: 9, quiesceReq: &raftpb.Message{Type: raftpb.MsgHeartbeat, From: 1, To: 2, Term: 3}}
	msgs := []raftpb.Message{
		{Type: raftpb.MsgHeartbeatResp, From: 2, To: 1, Term: 3, Context: []byte("round")},
		{Type: raftpb.MsgHeartbeatResp, From: 2, To: 1, Term: 3},
	}
	o.addMessages(g, msgs, false /* early */, 0 /* now */)
	b := o.batches[1]
	if b == nil || len(b.Items) != 1 || string(b.Items[0].Msg.Context) != "round" {
		t.Fatalf("sent %+v; want only the answer with the read context", b)
	}
}
