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
		switch {
		case m.To != r.id && r.acksInOutbox:
			r.msgs = enqueue(r.msgs, *m, r.outboxRoom)
			r.trailingAcks++
		case m.To != r.id:
			r.msgsAfterAppend = enqueue(r.msgsAfterAppend, *m, ackRoom)
			r.acksToPeers++
		default:
			r.msgsAfterAppend = enqueue(r.msgsAfterAppend, *m, ackRoom)
		}
	default:
		if m.To == r.id {
			panic(fmt.Sprintf("raft: %x sending %s to itself; only append and vote responses may be", r.id, m.Type))
		}
		r.msgs = enqueue(r.msgs, *m, r.outboxRoom)
		if r.trailingAcks != 0 {
			keepAcksLast(r.msgs, r.trailingAcks)
		}
	}
}

// keepAcksLast moves the message just appended to q before the k
// acknowledgements that end q, so that q stays in the order a Ready hands
// messages out in: the ones to send at once, then the acknowledgements that
// wait for the write (see acksInOutbox). It only writes slots after the
// acknowledgements' first, which no Ready has seen yet.
func keepAcksLast(q []pb.Message, k int) {
	n := len(q)
	m := q[n-1]
	copy(q[n-k:], q[n-1-k:n-1])
	q[n-1-k] = m
}

// Room that a full outbox grows by, besides doubling. Lent arrays (see
// LendMessages and lend) come back for reuse, so they only need to reach
// the size of one Ready's messages once, and a small start keeps an idle
// group's outboxes small. Otherwise the arrays are handed out for good and
// the outbox goes on in the unused rest of its array, so a chunk there
// serves several Readys instead of allocating for each. msgsAfterAppend
// holds a few acknowledgements at a time in either mode.
const (
	outboxRoomLent  = 4
	outboxRoomGiven = 32
	ackRoom         = 4
)

// enqueue appends m to the outbox q. A full q moves to a fresh array with
// room for at least room more. Callers rely on enqueue writing only past
// len(q): the slots before it may belong to a Ready.
func enqueue(q []pb.Message, m pb.Message, room int) []pb.Message {
	if len(q) == cap(q) {
		grown := make([]pb.Message, len(q), 2*len(q)+room)
		copy(grown, q)
		q = grown
	}
	return append(q, m)
}

// LendMessages lets raft reuse the array behind each Ready's Messages: the
// application may read it only until it takes the next Ready (after
// Advance), and a sender that hands the slice itself to another goroutine
// must copy it first. A busy node then stops allocating its outbox for
// every Ready. Without this call a Ready's Messages are the application's
// for good, as in etcd/raft. Call it before the first Ready; it does
// nothing with AsyncStorageWrites, whose messages are always handed out for
// good. (A method rather than a Config field: Config's fields are etcd's,
// and an extra one would break unkeyed literals and conversions.)
func (rn *RawNode) LendMessages() {
	if rn.async {
		return
	}
	rn.lending = true
	rn.raft.outboxRoom = outboxRoomLent
}

// lend records that out, the outbox of the Ready being accepted (synchronous
// mode), is handed out, and gives raft an array to queue the next messages
// in: the one lent with the previous Ready that had messages.
//
// Invariant (the Ready contract, synchronous mode): the array behind a
// Ready's Messages is the application's from the moment it takes the Ready
// until it takes the next one, which it may only do after Advance, that is
// after sending them. So when a Ready is accepted, every array lent before
// is free again. Only the array is reused: the messages' entries and
// contexts stay the application's, and Messages is capped, so an append by
// the application never writes into it.
func (rn *RawNode) lend(out []pb.Message) {
	if len(out) == 0 {
		// Nothing handed out: raft's queue is empty and stays as it is.
		return
	}
	free := rn.lent
	forgetRefs(free)
	rn.lent = out
	rn.raft.msgs = free[:0]
}

// forgetRefs lets go of what spent messages reference (entries, contexts,
// snapshots, responses), so that an array raft keeps for reuse does not
// keep them alive. Only the pointer fields that hold something are
// written: most messages (responses, heartbeats) reference nothing, and
// clearing whole ~170-byte messages, with the GC's write barrier over
// every slot while a cycle runs, cost a Ready cycle several percent. The
// other fields are stale but harmless: a slot is only reused whole (by
// append or assignment).
func forgetRefs(msgs []pb.Message) {
	for i := range msgs {
		m := &msgs[i]
		if m.Entries != nil {
			m.Entries = nil
		}
		if m.Snapshot != nil {
			m.Snapshot = nil
		}
		if m.Context != nil {
			m.Context = nil
		}
		if m.Responses != nil {
			m.Responses = nil
		}
	}
}

// LendReadStates is LendMessages for the array behind each Ready's
// ReadStates: the application may read them only until it takes the next
// Ready, and must copy the slice before handing it on to anything that
// keeps it longer. A node serving many reads then stops allocating room for
// their answers (one array every few reads otherwise, which keeps the
// garbage collector busy on an otherwise allocation-free read path).
// Without this call a Ready's ReadStates are the application's for good,
// as in etcd/raft. Call it before the first Ready.
func (rn *RawNode) LendReadStates() { rn.lendingReads = true }

// lentReadsCap is the largest read state array kept for reuse: one grown
// by a burst of reads is let go of rather than kept for the quiet that
// follows.
const lentReadsCap = 256

// handOutReadStates records that raft's queued read states go out with the
// Ready being accepted. Not lending, the Ready owns them for good and raft
// continues in the array's unused rest, which no Ready has seen. Lending,
// raft continues in the array lent with the previous Ready that had read
// states: the application took the Ready being accepted, so it is done
// with that one (the two arrays alternate). Its contexts are let go of.
func (rn *RawNode) handOutReadStates() {
	r := rn.raft
	rs := r.readStates
	if !rn.lendingReads {
		r.readStates = rs[len(rs):]
		return
	}
	free := rn.lentReads
	for i := range free {
		free[i].RequestCtx = nil
	}
	if cap(free) > lentReadsCap {
		free = nil
	}
	rn.lentReads = rs
	r.readStates = free[:0]
}

// idleOutboxCap is the largest outbox array (in messages) always kept
// through a quiet spell; see trimOutboxes.
const idleOutboxCap = 16

// trimOutboxes lets go of outbox arrays much larger than the recent Readys
// needed (sentMark), once nothing waits to be sent. A burst (a leader
// catching many followers up) grows them, and every quiet group would
// otherwise keep two such arrays long after; arrays sized for the current
// traffic stay, so a busy node does not allocate them again and again. Dropping lent is safe
// whoever still reads it: raft only forgets the array. msgsAfterAppend is
// kept whatever its size: a leader under load may queue thousands of its
// own acknowledgements between two Readys, and growing that array again
// after every lull costs more than it saves; a quiet group's stays small.
func (rn *RawNode) trimOutboxes() {
	r := rn.raft
	// Not lending, the outbox goes on in the unused rest of the array its
	// messages were handed out in, at most outboxRoomGiven after a growth
	// plus the doubling; dropping that room would make every Ready
	// allocate a fresh array.
	keep := max(idleOutboxCap, 4*rn.sentMark, 2*r.outboxRoom)
	if cap(r.msgs) > keep {
		r.msgs = nil
	}
	if cap(rn.lent) > keep {
		rn.lent = nil
	}
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
