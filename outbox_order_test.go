package raft

import (
	"testing"

	"github.com/stretchr/testify/require"

	pb "github.com/raftkit/raft/raftpb"
)

// TestReadyMessagesAcksLast checks the order of a synchronous RawNode's
// Ready.Messages when an acknowledgement (which waits for the write) is
// followed by a message to send at once: the latter comes first, as when
// the acknowledgements waited in msgsAfterAppend. The acknowledgements now
// wait at the end of msgs (acksInOutbox), and without keepAcksLast the
// heartbeat response would follow the append response.
func TestReadyMessagesAcksLast(t *testing.T) {
	nw := newTestNet(t, 3, nil, nil)
	nw.campaign(1)
	nw.mustLead(1)
	f := nw.node(2)
	require.False(t, f.rn.HasReady())
	last := f.r().log.last()
	term := f.r().Term
	require.NoError(t, f.rn.Step(pb.Message{Type: pb.MsgApp, From: 1, To: 2, Term: term,
		LogTerm: term, Index: last, Entries: []pb.Entry{{Index: last + 1, Term: term}}}))
	require.NoError(t, f.rn.Step(pb.Message{Type: pb.MsgHeartbeat, From: 1, To: 2, Term: term}))
	require.NoError(t, f.rn.Step(pb.Message{Type: pb.MsgApp, From: 1, To: 2, Term: term,
		LogTerm: term, Index: last + 1, Entries: []pb.Entry{{Index: last + 2, Term: term}}}))
	require.NoError(t, f.rn.Step(pb.Message{Type: pb.MsgHeartbeat, From: 1, To: 2, Term: term}))
	rd := f.rn.Ready()
	var types []pb.MessageType
	var index []uint64
	for _, m := range rd.Messages {
		types = append(types, m.Type)
		index = append(index, m.Index)
	}
	require.Equal(t, []pb.MessageType{pb.MsgHeartbeatResp, pb.MsgHeartbeatResp, pb.MsgAppResp, pb.MsgAppResp}, types)
	require.Equal(t, []uint64{0, 0, last + 1, last + 2}, index, "acknowledgements keep their own order")
	f.rn.Advance(rd)

	// The next Ready starts afresh: a heartbeat response alone, in front
	// of nothing.
	require.NoError(t, f.rn.Step(pb.Message{Type: pb.MsgHeartbeat, From: 1, To: 2, Term: term}))
	rd = f.rn.Ready()
	require.Len(t, rd.Messages, 1)
	require.Equal(t, pb.MsgHeartbeatResp, rd.Messages[0].Type)
}
