package raft

import pb "github.com/raftkit/raft/raftpb"

// The node goroutine of a Node is woken for every proposal and every
// message it is handed, and again to offer the Ready they cause: with one
// proposer, most of the hand-overs behind one commit. When the goroutine
// is idle (waiting in its select, offering no Ready) the caller of Step
// (a transport's reader, typically) steps its message itself, under n.mu, and hands a resulting Ready straight to an
// application already waiting on Ready(); the goroutine is woken only
// when something is left for it to do (a Ready nobody waits for yet, a
// change of leader). Everything that depends on the goroutine's select
// (Tick, Status, configuration changes, Stop) still goes through it.
//
// What a caller sees does not change: Step returns once its message is
// taken (stepped, here), a Ready handed out is built the same way and no
// further one comes before Advance, and one caller's messages are stepped
// in the order it sent them (a message handed over is stepped before
// anyone steps one inline: see queued).
//
// Proposals always go through the goroutine. Stepped by their callers,
// they were worse on both sides of the benchmarks (benchmarks/HISTORY.md,
// seventh pass): under load an application that batches its proposals (one
// MsgProp of those that arrived while the previous one was being handed
// over, as the benchmarks' driver does) gets its batches from that wait,
// and proposals stepped at once went out one entry per append (about 9
// messages per commit instead of 1.4 at 16 proposers on memory storage);
// and stepped only when raft had nothing in flight (a lone proposer),
// they still lost to handing over at one proposer with fsync.

// stepInline steps m, which is not a proposal (see send), on the caller's
// goroutine if the node goroutine is idle (see idle), and then publishes
// the result. It reports false, having done nothing, when m must be handed
// over instead: the goroutine (or another caller) holds n.mu or is not
// idle. A stopped node answers ErrStopped. A busy goroutine is not waited
// for, so that the caller's ctx still bounds its wait. Stepping errors are
// not returned, as when the goroutine steps the message.
func (n *node) stepInline(m *pb.Message) (error, bool) {
	if !n.mu.TryLock() {
		return nil, false
	}
	defer n.mu.Unlock()
	if n.stopped {
		return ErrStopped, true
	}
	if !n.idle() {
		return nil, false
	}
	n.stepReceived(*m)
	n.publish()
	return nil, true
}

// idle reports whether the node goroutine has nothing of its own to do
// with raft's state: it offers no Ready (raft must not change under the
// copy its select holds), has none built and waiting to be offered, none
// out awaiting Advance, and no message handed over and not stepped yet
// (which keeps a caller's messages in the order it sent them).
func (n *node) idle() bool {
	return !n.offering && n.st.readyc == nil && n.st.advancec == nil && n.queued.Load() == 0
}

// advanceInline acknowledges the Ready the application took, on the
// caller's goroutine, and reports whether one was out.
func (n *node) advanceInline() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.stopped {
		return true
	}
	if n.st.advancec == nil {
		return false
	}
	n.advanced(&n.st)
	n.publish()
	return true
}

// publish does, after a caller changed raft's state, what the node
// goroutine does after each change: it prepares the next Ready and follows
// the leader. A Ready is handed to the application at once if it waits on
// Ready() (a send that never blocks: the same offer the goroutine's select
// makes, taken by the same receiver); otherwise, or when the leader
// changed the proposal channel, the goroutine is woken to re-arm its
// select. The caller holds n.mu and the goroutine is not offering.
func (n *node) publish() {
	st := &n.st
	n.prepareReady(st)
	n.followLeader(st)
	if st.readyc != nil {
		select {
		case st.readyc <- st.rd:
			n.readyTaken(st)
		default:
		}
	}
	if st.readyc != nil || st.propc != n.armedPropc {
		n.wake()
	}
}

// wake makes the node goroutine run its loop once more; wakes already
// pending are merged.
func (n *node) wake() {
	select {
	case n.wakec <- struct{}{}:
	default:
	}
}
