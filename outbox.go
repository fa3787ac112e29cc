package raft

import (
	"fmt"

	pb "github.com/raftkit/raft/raftpb"
)

// The outboxes: every message raft produces is stamped with sender and term
// and queued here, to be handed out by the next Ready.

// send queues m, filling in the sender and the term.
//
// Vote requests and responses carry their term explicitly (the campaign's
// term, which a pre-vote has not entered yet), so it must be set; proposals
// and read requests forwarded to the leader carry none; every other message
// gets the current term.
//
// Append and vote responses promise that what they acknowledge is durable
// (thesis §3.8), so they wait in msgsAfterAppend until everything unstable
// now is persisted. Rejections could in principle go at once, but they are
// rare and the delay is known to be safe.
//
// m is the caller's message to fill in (From, Term), not kept: its value
// goes into the outbox. (By pointer, so that the ~200 bytes are copied
// once, into the outbox, rather than also into send.)
func (r *raft) send(m *pb.Message) {
	if m.From == None {
		m.From = r.id
	}
	r.stampTerm(m)
	switch m.Type {
	case pb.MsgAppResp, pb.MsgVoteResp, pb.MsgPreVoteResp:
		r.msgsAfterAppend = enqueue(r.msgsAfterAppend, *m)
	default:
		if m.To == r.id {
			panic(fmt.Sprintf("raft: %x sending %s to itself; only append and vote responses may be", r.id, m.Type))
		}
		r.msgs = enqueue(r.msgs, *m)
	}
}

// outboxChunk is the room for messages that a full outbox grows by at
// least. An outbox starts out empty after every Ready (the Ready took its
// messages), and plain append would then allocate for each of the next few
// messages; a chunk serves several Readys instead.
const outboxChunk = 32

// enqueue appends m to the outbox q. A full q moves to a fresh array with
// room for at least outboxChunk more. Callers rely on enqueue writing only
// past len(q): the slots before it may belong to a Ready.
func enqueue(q []pb.Message, m pb.Message) []pb.Message {
	if len(q) == cap(q) {
		grown := make([]pb.Message, len(q), 2*len(q)+outboxChunk)
		copy(grown, q)
		q = grown
	}
	return append(q, m)
}

// stampTerm sets or checks m's term as described on send.
func (r *raft) stampTerm(m *pb.Message) {
	switch m.Type {
	case pb.MsgVote, pb.MsgVoteResp, pb.MsgPreVote, pb.MsgPreVoteResp:
		if m.Term == 0 {
			panic(fmt.Sprintf("raft: %x sending %s without a term", r.id, m.Type))
		}
	case pb.MsgProp, pb.MsgReadIndex:
		if m.Term != 0 {
			panic(fmt.Sprintf("raft: %x sending %s with term %d; it must carry none", r.id, m.Type, m.Term))
		}
	default:
		if m.Term != 0 {
			panic(fmt.Sprintf("raft: %x sending %s with term %d; send sets it", r.id, m.Type, m.Term))
		}
		m.Term = r.Term
	}
}
