package raft

import pb "github.com/raftkit/raft/raftpb"

// The node goroutine of a Node is woken for every proposal and every
// message it is handed, and again to offer the Ready they cause: with one
// proposer, most of the hand-overs behind one commit. When the goroutine
// is idle (waiting in its select, offering no Ready) the caller steps its
// message itself, under n.mu, and hands a resulting Ready straight to an
// application already waiting on Ready(); the goroutine is woken only
// when something is left for it to do (a Ready nobody waits for yet, a
// change of leader). Everything that depends on the goroutine's select
// (Tick, Status, configuration changes, Stop) still goes through it.
//
// What a caller sees does not change: its message is stepped before Step
// returns either way (the goroutine answers a proposal only after
// stepping it, and a message it took is stepped before any other caller
// gets n.mu: see queued), the Ready handed out is built the same way, and
// the order of one caller's messages is kept.

// stepInline steps m on the caller's goroutine if the node goroutine is
// idle, and then publishes the result. It reports false, having done
// nothing, when m must be handed over instead: the goroutine (or another
// caller) holds n.mu, the goroutine offers a Ready, messages handed to it
// are still to be stepped, or m is a proposal and proposals are not taken
// (no leader known, or this node was removed). A stopped node answers
// ErrStopped. A busy goroutine is not waited for, so that the caller's ctx
// still bounds its wait.
func (n *node) stepInline(m *pb.Message, w *proposalWait) (error, bool) {
	if !n.mu.TryLock() {
		return nil, false
	}
	defer n.mu.Unlock()
	switch {
	case n.stopped:
		return ErrStopped, true
	case n.offering || n.queued.Load() != 0:
		return nil, false
	case m.Type == pb.MsgProp && n.st.propc == nil:
		return nil, false
	}
	var err error
	if m.Type == pb.MsgProp {
		err = n.stepProposalMsg(m, w)
	} else {
		n.stepReceived(*m)
	}
	n.publish()
	if w == nil {
		// Only Propose learns the verdict, as when the node goroutine
		// steps the message.
		err = nil
	}
	return err, true
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
