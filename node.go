package raft

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"

	pb "github.com/raftkit/raft/raftpb"
)

// SnapshotStatus is what the application reports, through ReportSnapshot,
// about a snapshot it was asked to send to a follower.
type SnapshotStatus int

const (
	// SnapshotFinish reports that the follower received the snapshot.
	SnapshotFinish SnapshotStatus = 1
	// SnapshotFailure reports that sending the snapshot failed; the leader
	// then goes back to probing the follower instead of waiting for it.
	SnapshotFailure SnapshotStatus = 2
)

// ErrStopped is returned by the methods of a Node that has been stopped.
var ErrStopped = errors.New("raft: stopped")

// emptyState is the HardState of a node that has never voted, seen a term or
// learned of a commit; a Ready carries it when the HardState did not change.
var emptyState = pb.HardState{}

// Ready is a batch of work that raft hands to the application: state to make
// durable, messages to send and entries to apply. See the package
// documentation for the order in which the parts must be handled.
//
// Ownership: once the application has received a Ready (from RawNode.Ready or
// from Node.Ready), raft does not modify anything it references, with one
// opt-in exception: after RawNode.LendMessages (and without
// AsyncStorageWrites), the array behind Messages is raft's again once the
// application takes the next Ready (which it does after Advance), and raft
// queues later messages in it. The messages themselves may be copied and
// kept, entries and contexts included; RawNode.LendReadStates lends the
// array behind ReadStates the same way. Everything else (entries, committed
// entries, read states unless lent, snapshot) the application may keep as long as it
// likes, but must not modify either: entries may be shared with the Storage
// and with messages in flight.
type Ready struct {
	// SoftState is the node's volatile leader and role, present only when
	// it changed since the previous Ready (nil otherwise). Nothing about it
	// needs to be persisted.
	*SoftState

	// HardState must be persisted before Messages are sent. It is the empty
	// HardState when nothing changed.
	//
	// With AsyncStorageWrites it is also carried by the MsgStorageAppend in
	// Messages and need not be acted on here.
	pb.HardState

	// ReadStates answer earlier ReadIndex requests: a read with a given
	// request context is linearizable once the application has applied the
	// log up to the read state's Index. Each ReadState is handed out once.
	//
	// After RawNode.LendReadStates the slice is lent, as Messages is after
	// LendMessages: it may be read until the application takes the next
	// Ready (the contexts may be kept). Otherwise it is the application's
	// for good (always, for Node).
	ReadStates []ReadState

	// Entries must be appended to stable storage before Messages are sent.
	//
	// With AsyncStorageWrites they are also carried by the MsgStorageAppend
	// in Messages and need not be acted on here.
	Entries []pb.Entry

	// Snapshot, if not empty (see IsEmptySnap), must be saved to stable
	// storage; it replaces the log up to its index.
	//
	// With AsyncStorageWrites it is also carried by the MsgStorageAppend in
	// Messages and need not be acted on here.
	Snapshot pb.Snapshot

	// CommittedEntries are ready to be applied to the state machine, in
	// order. They have been appended to stable storage already (by this
	// Ready or an earlier one).
	//
	// With AsyncStorageWrites they are also carried by the MsgStorageApply
	// in Messages and need not be acted on here.
	CommittedEntries []pb.Entry

	// Messages are outbound. Without AsyncStorageWrites they may be sent
	// only after Entries, HardState and Snapshot are durable. With
	// AsyncStorageWrites they may be sent at once: the messages that depend
	// on durability ride in the Responses of the MsgStorageAppend and
	// MsgStorageApply messages addressed to LocalAppendThread and
	// LocalApplyThread, which are included here.
	//
	// For every MsgSnap the application must eventually call ReportSnapshot
	// with the outcome; until it does, the leader stops replicating to that
	// follower.
	//
	// After RawNode.LendMessages (and without AsyncStorageWrites) the
	// slice is lent: it may be read until the application takes the next
	// Ready, after which raft reuses its array. A sender that works on
	// after that copies the messages. Otherwise it is the application's
	// for good (always, for Node).
	Messages []pb.Message

	// MustSync tells whether HardState and Entries must be written with an
	// fsync (see the MustSync function), or a buffered write will do.
	MustSync bool
}

// IsEmptySnap reports whether sp is empty, i.e. has index 0 (a real snapshot
// always covers at least the entry at index 1).
func IsEmptySnap(sp pb.Snapshot) bool {
	return sp.Metadata.Index == 0
}

// hasSnapshot is !IsEmptySnap(*sp) without copying the ~150-byte
// snapshot: passed by value, IsEmptySnap copies it even when inlined, and on
// the Ready path the copy was most of the cost of the check.
func hasSnapshot(sp *pb.Snapshot) bool { return sp.Metadata.Index != 0 }

// IsEmptyHardState reports whether st is the zero HardState.
func IsEmptyHardState(st pb.HardState) bool {
	return sameHardState(st, emptyState)
}

// sameHardState compares the three fields of a HardState; it exists so
// that comparisons do not depend on the struct's generated extras.
func sameHardState(a, b pb.HardState) bool {
	return a.Term == b.Term && a.Vote == b.Vote && a.Commit == b.Commit
}

// Node is a raft node driven through channels: a goroutine serializes the
// work on the state machine, and these methods, safe for concurrent use,
// hand it their requests (a message from a peer, or an Advance, may be
// stepped on the caller's goroutine instead while that goroutine is idle,
// to the same effect). It is the concurrent counterpart of RawNode.
type Node interface {
	// Tick advances the node's logical clock by one tick. Election and
	// heartbeat timeouts are counted in ticks. Ticks are buffered while the
	// node is busy; if the buffer is full the tick is dropped with a
	// warning.
	Tick()

	// Campaign makes the node a candidate (or pre-candidate with PreVote)
	// and starts an election.
	Campaign(ctx context.Context) error

	// ForgetLeader makes a follower forget its leader for the rest of the
	// term, without campaigning.
	//
	// With PreVote and CheckQuorum a follower refuses pre-votes while it
	// has heard from a leader within the election timeout. When the
	// application knows for sure that the leader is gone (say, its machine
	// was shut down), it can make a quorum of followers forget it so that
	// one of them wins a pre-vote at once, instead of after a full election
	// timeout. A lone node cannot do that alone, which protects a healthy
	// leader from one mistaken follower. A follower that hears from the
	// leader again follows it as before.
	//
	// It does nothing with ReadOnlyLeaseBased, where a new leader elected
	// behind the old leader's back would break the lease.
	ForgetLeader(ctx context.Context) error

	// TransferLeadership asks lead to hand leadership over to transferee.
	TransferLeadership(ctx context.Context, lead, transferee uint64)

	// Propose asks for data to be appended to the log. It waits until the
	// node's state machine has taken or refused the proposal, returning
	// ErrProposalDropped when it was refused. A taken proposal may still be
	// lost (for instance when leadership changes), so callers retry on
	// their own terms. While the node knows of no leader, Propose blocks
	// until ctx is done.
	Propose(ctx context.Context, data []byte) error

	// ProposeConfChange proposes a configuration change: a pb.ConfChange
	// (the older, single-change form) or a pb.ConfChangeV2 (any changes,
	// through joint consensus when needed; only usable when every node of
	// the cluster understands it). Like any proposal it may be dropped,
	// with or without an error: notably, a leader refuses a change while
	// an earlier one in its log is not applied yet.
	ProposeConfChange(ctx context.Context, cc pb.ConfChangeI) error

	// ApplyConfChange applies a configuration change that the application
	// found in Ready.CommittedEntries. Every committed change must be
	// applied, unless the application decides to reject it (treating the
	// entry as a no-op), in which case it must not be called. The returned
	// ConfState is to be recorded in later snapshots.
	ApplyConfChange(cc pb.ConfChangeI) *pb.ConfState

	// Step hands a message received from a peer to the node. Messages that
	// only the node itself may create are ignored. It returns ctx.Err() if
	// ctx ends first.
	Step(ctx context.Context, msg pb.Message) error

	// Ready returns the channel on which the node delivers its batches of
	// work. After handling a Ready the application must call Advance
	// (never with AsyncStorageWrites); no further Ready arrives before it.
	//
	// Committed entries of a Ready must not be applied before the committed
	// entries and snapshot of the previous Ready are applied.
	Ready() <-chan Ready

	// Advance tells the node that the last Ready was handled, and lets it
	// prepare the next one. It is normally called after the Ready's
	// committed entries are applied, but may be called while they are still
	// being applied (a large snapshot, say), to let raft make progress in
	// the meantime.
	//
	// Advance must not be called with AsyncStorageWrites: the responses of
	// the local storage threads take its place.
	Advance()

	// ReadIndex asks for a read index for the request context rctx. The
	// answer arrives as a ReadState in a later Ready: once the application
	// has applied up to its Index, reads issued before the request are
	// linearizable. Requests can be lost; retrying is up to the caller.
	ReadIndex(ctx context.Context, rctx []byte) error

	// Status returns the current status of the raft state machine, or the
	// zero Status once the node is stopped.
	Status() Status

	// ReportSnapshot reports the outcome of sending a snapshot to follower
	// id. While the snapshot is in flight the leader does not probe the
	// follower, so a failure (the transfer broke, the follower crashed)
	// must be reported with SnapshotFailure, or the follower may never
	// hear from the leader again. Reporting SnapshotFinish changes nothing.
	ReportSnapshot(id uint64, status SnapshotStatus)

	// ReportUnreachable reports that the last message sent to id could not
	// be delivered.
	ReportUnreachable(id uint64)

	// Stop stops the node's goroutine and waits for it to exit. Calling it
	// again is harmless.
	Stop()
}

// Peer names a member of the initial configuration given to StartNode.
type Peer struct {
	// ID is the member's node ID (non-zero).
	ID uint64
	// Context is opaque application data carried in the member's
	// ConfChange entry.
	Context []byte
}

// StartNode creates a Node for a brand-new cluster member with the given
// initial configuration, and starts it. The log begins with one
// ConfChangeAddNode entry per peer (see RawNode.Bootstrap).
//
// peers must not be empty; a node with existing state is started with
// RestartNode. An invalid Config panics, since the Node interface has no way
// to return the error; use NewRawNode to get it as an error instead.
func StartNode(c *Config, peers []Peer) Node {
	if len(peers) == 0 {
		panic("no peers given; use RestartNode instead") // etcd/raft's text
	}
	rn := mustNewRawNode(c)
	if err := rn.Bootstrap(peers); err != nil {
		// A non-empty Storage: the node goes on with the state it has.
		rn.raft.logger.Warningf("raft: bootstrapping the new node failed: %v", err)
	}
	n := nodeOf(rn)
	go n.loop()
	return n
}

// RestartNode creates a Node from the state in c.Storage (the configuration
// comes from there too) and starts it. Config.Applied should be the last
// index the application's state machine has applied, or zero. An invalid
// Config panics, as with StartNode.
func RestartNode(c *Config) Node {
	n := nodeOf(mustNewRawNode(c))
	go n.loop()
	return n
}

func mustNewRawNode(c *Config) *RawNode {
	rn, err := NewRawNode(c)
	if err != nil {
		panic(err)
	}
	return rn
}

// proposalWait is what a caller that waits for the outcome of stepping its
// proposal shares with the node goroutine: the channel for the error (it
// holds one at most) and, for Node.Propose, the entry the proposal carries.
// The node goroutine sets kept before it answers: whether raft may still
// hold the entry (a follower forwards the proposal, entries and all; a
// leader copies them into its log and keeps none, see RawNode.Propose).
// Waits are recycled through proposalWaits unless kept, which saves
// Node.Propose its allocations.
type proposalWait struct {
	result chan error
	entry  [1]pb.Entry
	kept   bool
}

// proposalWaits recycles proposalWaits.
var proposalWaits = sync.Pool{New: func() any { return &proposalWait{result: make(chan error, 1)} }}

// recycle hands w back for another proposal, unless raft may hold its
// entry. The caller has its answer, or the node goroutine never took it.
func (w *proposalWait) recycle() {
	if w.kept {
		return
	}
	w.entry[0] = pb.Entry{} // drop the reference to the data
	proposalWaits.Put(w)
}

// msgWithResult carries a message into the node goroutine, plus, for a
// caller that waits for the outcome of stepping it, what it waits on.
type msgWithResult struct {
	m    pb.Message
	wait *proposalWait
}

// node implements Node. All raft state belongs to the goroutine in run; the
// other methods only exchange values with it over these channels.
type node struct {
	rn *RawNode

	// Work for the state machine: ticks, proposals, peers' messages.
	// tickc is buffered so that ticks arriving while the goroutine is busy
	// are caught up on later rather than lost.
	tickc chan struct{}
	propc chan msgWithResult
	recvc chan pb.Message

	// The Ready handshake.
	readyc   chan Ready
	advancec chan struct{}

	// The application's rare requests (configuration changes, status,
	// stop) share one channel: every channel in run's select costs each
	// iteration a lock and a wait-queue entry, and these are seldom used.
	// confstatec returns a configuration change's outcome; done is closed
	// once run has exited.
	ctlc       chan ctlRequest
	confstatec chan pb.ConfState
	done       chan struct{}

	// wakec (one slot) makes the node goroutine look at st again after a
	// caller changed it (see node_inline.go).
	wakec chan struct{}

	// queued counts the messages a caller is handing over to the node
	// goroutine (on propc or recvc) and the goroutine has not stepped yet.
	// While it is not zero nobody steps a message on its own goroutine, so
	// that a caller's messages are stepped in the order it sent them.
	queued atomic.Int32

	// mu guards rn and the fields below. The node goroutine holds it while
	// it works, not while it waits in its select; a caller that gets it
	// may step its message itself (see node_inline.go).
	mu sync.Mutex
	st loopState
	// offering is set while the node goroutine's select offers a copy of
	// st.rd on readyc: raft must not change until the goroutine knows
	// whether the application took it (RawNode.handOutReady records what
	// the Ready it built carried), so callers hand their messages over.
	offering bool
	// armedPropc is the proposal channel as the node goroutine's select
	// last armed it; a caller that changes st.propc wakes the goroutine.
	armedPropc chan msgWithResult
	// stopped is set when run exits (done is closed at the same time).
	stopped bool
}

// ctlKind says what a ctlRequest asks for.
type ctlKind uint8

const (
	ctlConfChange ctlKind = iota // apply cc, answer on confstatec
	ctlStatus                    // send the Status on reply
	ctlStop                      // exit run
)

// ctlRequest is one request on node.ctlc.
type ctlRequest struct {
	kind  ctlKind
	cc    pb.ConfChangeV2
	reply chan Status
}

// tickBufferSize is how many ticks a busy node goroutine may fall behind.
const tickBufferSize = 128

func nodeOf(rn *RawNode) *node {
	return &node{
		propc:      make(chan msgWithResult),
		recvc:      make(chan pb.Message),
		ctlc:       make(chan ctlRequest),
		confstatec: make(chan pb.ConfState),
		readyc:     make(chan Ready),
		advancec:   make(chan struct{}),
		tickc:      make(chan struct{}, tickBufferSize),
		done:       make(chan struct{}),
		wakec:      make(chan struct{}, 1),
		rn:         rn,
		st:         loopState{lead: None},
	}
}

// Stop implements Node.
func (n *node) Stop() {
	select {
	case n.ctlc <- ctlRequest{kind: ctlStop}:
		<-n.done
	case <-n.done:
	}
}

// loopState is what the node goroutine keeps between iterations. A nil
// channel is never selected, so disarming a case is setting it to nil.
type loopState struct {
	// propc is n.propc while proposals are accepted: only while a leader is
	// known (a proposal could go nowhere otherwise) and the node was not
	// removed from the configuration.
	propc chan msgWithResult
	// readyc is n.readyc while rd holds a Ready to deliver.
	readyc chan Ready
	// advancec is n.advancec between the delivery of a Ready and the
	// application's Advance; no new Ready is prepared in between.
	advancec chan struct{}
	rd       Ready
	// lead is the leader as of the previous iteration.
	lead uint64
	// quick counts the iterations in a row served by tryHandshake; capped
	// so that the full select (stop, status, proposals...) still runs at
	// least every few iterations whatever the application does.
	quick int
}

// maxQuick bounds consecutive iterations served by tryHandshake: a Ready
// delivery followed by its Advance.
const maxQuick = 2

// loop is the node goroutine. It holds n.mu except while it waits in its
// select; what the select offers (the Ready, the proposal channel) is
// copied out of st under the lock, and offering tells callers that st.rd
// must stay as it is until the goroutine is back.
func (n *node) loop() {
	st := &n.st
	n.mu.Lock()
	for {
		n.prepareReady(st)
		n.followLeader(st)
		if st.quick < maxQuick && n.tryHandshake(st) {
			st.quick++
			continue
		}
		st.quick = 0
		propc, readyc, advancec, rd := st.propc, st.readyc, st.advancec, st.rd
		n.offering, n.armedPropc = readyc != nil, propc
		n.mu.Unlock()
		select {
		case pm := <-propc:
			n.retake()
			n.stepProposal(pm)
			n.stepWaitingProposals(st)
		case m := <-n.recvc:
			n.retake()
			n.stepReceived(m)
			n.queued.Add(-1)
		case req := <-n.ctlc:
			n.retake()
			if !n.control(req) {
				n.mu.Unlock()
				return
			}
		case <-n.tickc:
			n.retake()
			n.rn.Tick()
		case readyc <- rd:
			n.retake()
			n.readyTaken(st)
		case <-advancec:
			n.retake()
			if st.advancec != nil {
				n.advanced(st)
			}
		case <-n.wakec:
			n.retake()
		}
	}
}

// retake takes n.mu back after the node goroutine's select: whatever the
// select offered is settled.
func (n *node) retake() {
	n.mu.Lock()
	n.offering = false
}

// control serves a request from ctlc; it returns false when the node
// goroutine is to exit.
func (n *node) control(req ctlRequest) bool {
	switch req.kind {
	case ctlConfChange:
		n.answerConfChange(&n.st, req.cc)
	case ctlStatus:
		req.reply <- collectStatus(n.rn.raft)
	case ctlStop:
		n.stopped = true
		close(n.done)
		return false
	}
	return true
}

// tryHandshake completes the Ready handshake's next step if the application
// is already waiting for it (blocked in Ready() or Advance()), without the
// full select: a non-blocking operation on one channel costs a fraction of
// a select over all of them, and a waiting application is the common case.
// Which of several ready cases a select picks is unspecified anyway, so
// serving this one first changes nothing observable; maxQuick keeps the
// other cases from waiting behind it for long.
func (n *node) tryHandshake(st *loopState) bool {
	switch {
	case st.readyc != nil:
		select {
		case st.readyc <- st.rd:
			n.readyTaken(st)
			return true
		default:
		}
	case st.advancec != nil:
		select {
		case <-st.advancec:
			n.advanced(st)
			return true
		default:
		}
	}
	return false
}

// readyTaken records that the application took the Ready on offer.
func (n *node) readyTaken(st *loopState) {
	n.rn.handOutReady(&st.rd)
	st.readyc = nil
	if n.rn.async {
		// The storage threads' responses stand in for Advance.
		st.rd = Ready{}
	} else {
		st.advancec = n.advancec
	}
}

// advanced records the application's Advance of the Ready it took.
func (n *node) advanced(st *loopState) {
	n.rn.Advance(st.rd)
	st.rd = Ready{}
	st.advancec = nil
}

// prepareReady (re)builds the Ready on offer. It is rebuilt on every
// iteration in which there is work, so that whatever happened since the last
// build is included, and it is only accepted once the application takes it.
func (n *node) prepareReady(st *loopState) {
	if st.advancec != nil || !n.rn.HasReady() {
		return
	}
	st.rd = Ready{}
	n.rn.buildReady(&st.rd)
	st.readyc = n.readyc
}

// followLeader arms or disarms proposals when the known leader changes.
func (n *node) followLeader(st *loopState) {
	r := n.rn.raft
	if st.lead == r.lead {
		return
	}
	switch {
	case r.lead == None:
		r.logger.Infof("raft.node: %x lost leader %x at term %d", r.id, st.lead, r.Term)
		st.propc = nil
	case st.lead == None:
		r.logger.Infof("raft.node: %x elected leader %x at term %d", r.id, r.lead, r.Term)
		st.propc = n.propc
	default:
		r.logger.Infof("raft.node: %x changed leader from %x to %x at term %d", r.id, st.lead, r.lead, r.Term)
		st.propc = n.propc
	}
	st.lead = r.lead
}

// maxWaitingProposals bounds how many proposals one wake-up of the node
// goroutine takes from proposers already waiting (see
// stepWaitingProposals), so that the Ready handshake is not held up long.
const maxWaitingProposals = 64

// stepWaitingProposals steps the proposals of callers already blocked
// sending one, without a select per proposal: with many proposers, one
// wake-up serves them all, and the next Ready carries all their entries.
// Each is stepped on its own and answered with its own outcome, as if the
// select had picked the proposal case that many times in a row (a choice
// it may make).
func (n *node) stepWaitingProposals(st *loopState) {
	for i := 0; i < maxWaitingProposals && st.propc != nil; i++ {
		select {
		case pm := <-st.propc:
			n.stepProposal(pm)
		default:
			return
		}
	}
}

// stepProposal steps a proposal handed over on propc and answers its
// waiting caller, if any.
func (n *node) stepProposal(pm msgWithResult) {
	err := n.stepProposalMsg(&pm.m, pm.wait)
	n.queued.Add(-1)
	if pm.wait != nil {
		// Not closed: the proposer recycles the channel (proposalWaits).
		pm.wait.result <- err
	}
}

// stepProposalMsg steps a proposal, recording in w (if any) whether raft
// may keep its entry.
func (n *node) stepProposalMsg(m *pb.Message, w *proposalWait) error {
	r := n.rn.raft
	m.From = r.id
	leading := r.state == StateLeader
	err := r.stepMsg(m)
	if w != nil {
		// Written before the answer, which orders it before the proposer's
		// read (of the channel, or of the lock released after this).
		w.kept = !leading
	}
	return err
}

// stepReceived steps a message that is not a proposal: a peer's, or a
// local request of the application.
func (n *node) stepReceived(m pb.Message) {
	r := n.rn.raft
	if IsResponseMsg(m.Type) && !IsLocalMsgTarget(m.From) && r.order.Progress(m.From) == nil {
		// A response from a node that is not (or no longer) a member.
		return
	}
	_ = r.stepMsg(&m)
}

// answerConfChange applies cc and hands the resulting ConfState back to the
// caller of Node.ApplyConfChange.
func (n *node) answerConfChange(st *loopState, cc pb.ConfChangeV2) {
	r := n.rn.raft
	_, wasMember := r.trk.Progress[r.id]
	cs := r.applyConfigChange(cc)
	_, isMember := r.trk.Progress[r.id]
	// A node that has just been removed stops taking proposals. Only a
	// removal counts: a node catching up on the log may not know yet that
	// it is a member, and must keep taking proposals meanwhile. A new
	// leader re-arms proposals (see followLeader).
	if wasMember && !isMember && !containsID(cs.Voters, r.id) && !containsID(cs.VotersOutgoing, r.id) {
		st.propc = nil
	}
	select {
	case n.confstatec <- cs:
	case <-n.done:
	}
}

func containsID(ids []uint64, id uint64) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

// Tick implements Node.
func (n *node) Tick() {
	select {
	case n.tickc <- struct{}{}:
	case <-n.done:
	default:
		n.rn.raft.logger.Warningf("%x A tick missed to fire. Node blocks too long!", n.rn.raft.id)
	}
}

// Campaign implements Node.
func (n *node) Campaign(ctx context.Context) error {
	return n.send(ctx, campaignMsg(), nil /* no wait */)
}

// Propose implements Node.
func (n *node) Propose(ctx context.Context, data []byte) error {
	w := proposalWaits.Get().(*proposalWait)
	w.entry[0] = pb.Entry{Data: data}
	return n.send(ctx, pb.Message{Type: pb.MsgProp, Entries: w.entry[:]}, w)
}

// Step implements Node.
func (n *node) Step(ctx context.Context, m pb.Message) error {
	if IsLocalMsg(m.Type) && !IsLocalMsgTarget(m.From) {
		// A peer cannot ask for local actions such as an election; ignoring
		// the message (rather than failing) is what etcd/raft does.
		return nil
	}
	return n.send(ctx, m, nil /* no wait */)
}

// ProposeConfChange implements Node. Unlike Propose it does not wait for the
// state machine's verdict.
func (n *node) ProposeConfChange(ctx context.Context, cc pb.ConfChangeI) error {
	m, err := confChangeProposal(cc)
	if err != nil {
		return err
	}
	return n.Step(ctx, m)
}

// send steps m on the caller's goroutine when it can and m is not a
// proposal (see stepInline), and otherwise hands it to the node goroutine.
// Proposals go through the proposal channel (armed only while a leader is
// known); with a wait w, send also waits for the error from stepping the
// proposal (and then recycles w). Everything else goes through the receive
// channel and is never waited for, and so does a proposal without w.
func (n *node) send(ctx context.Context, m pb.Message, w *proposalWait) error {
	if m.Type != pb.MsgProp {
		if err, ok := n.stepInline(&m); ok {
			return err
		}
		n.queued.Add(1)
		select {
		case n.recvc <- m:
			return nil
		case <-ctx.Done():
			n.queued.Add(-1)
			return ctx.Err()
		case <-n.done:
			n.queued.Add(-1)
			return ErrStopped
		}
	}
	n.queued.Add(1)
	pm := msgWithResult{m: m, wait: w}
	// The node goroutine usually sits in its select with proposals armed:
	// hand pm over without a select of our own then (cheaper, and the
	// outcome is the same as the select's when the send can proceed).
	select {
	case n.propc <- pm:
	default:
		if err := n.handOverProposal(ctx, pm); err != nil {
			n.queued.Add(-1) // never taken
			if w != nil {
				w.recycle()
			}
			return err
		}
	}
	if w == nil {
		return nil
	}
	// The node goroutine has taken pm and answers it right after stepping
	// it, but it may first wait for n.mu, held by a caller stepping its own
	// message (stepInline), which may take long (a slow logger): so ctx
	// still bounds the wait, as it does in etcd/raft. A proposal abandoned
	// that way is still stepped; its wait is left to the collector.
	select {
	case err := <-w.result:
		// Drained, and the node goroutine sends exactly one error: the
		// wait can serve another proposal.
		w.recycle()
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// handOverProposal waits until the node goroutine takes pm, ctx ends or
// the node stops.
func (n *node) handOverProposal(ctx context.Context, pm msgWithResult) error {
	select {
	case n.propc <- pm:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-n.done:
		return ErrStopped
	}
}

// Ready implements Node.
func (n *node) Ready() <-chan Ready { return n.readyc }

// handOver sends v to the node goroutine on ch, unless the node stops
// first; it reports whether the goroutine took v.
func handOver[T any](n *node, ch chan<- T, v T) bool {
	select {
	case ch <- v:
		return true
	case <-n.done:
		return false
	}
}

// Advance implements Node. The Ready handed out is acknowledged on the
// caller's goroutine (see advanceInline); an Advance with no Ready out
// waits, as it always did, for the node goroutine to hand one out.
func (n *node) Advance() {
	if !n.advanceInline() {
		handOver(n, n.advancec, struct{}{})
	}
}

// ApplyConfChange implements Node. After Stop it returns an empty ConfState.
func (n *node) ApplyConfChange(cc pb.ConfChangeI) *pb.ConfState {
	cs := new(pb.ConfState)
	if !handOver(n, n.ctlc, ctlRequest{kind: ctlConfChange, cc: cc.AsV2()}) {
		return cs
	}
	select {
	case *cs = <-n.confstatec:
	case <-n.done:
	}
	return cs
}

// statusChans recycles the reply channels of Status, one allocation per
// call otherwise. Each holds one Status at most, so the node goroutine never
// waits for the caller.
var statusChans = sync.Pool{New: func() any { return make(chan Status, 1) }}

// Status implements Node. After Stop it returns the zero Status.
func (n *node) Status() Status {
	reply := statusChans.Get().(chan Status)
	if !handOver(n, n.ctlc, ctlRequest{kind: ctlStatus, reply: reply}) {
		statusChans.Put(reply)
		return Status{}
	}
	// The node goroutine answers every status request it takes, at once.
	st := <-reply
	statusChans.Put(reply)
	return st
}

// ReportUnreachable implements Node.
func (n *node) ReportUnreachable(id uint64) {
	n.deliverLocal(unreachableMsg(id))
}

// ReportSnapshot implements Node.
func (n *node) ReportSnapshot(id uint64, status SnapshotStatus) {
	n.deliverLocal(snapStatusMsg(id, status))
}

// deliverLocal hands m to the node goroutine, or drops it if the node is
// stopped.
func (n *node) deliverLocal(m pb.Message) {
	if _, ok := n.stepInline(&m); ok {
		return
	}
	n.queued.Add(1)
	select {
	case n.recvc <- m:
	case <-n.done:
		n.queued.Add(-1)
	}
}

// TransferLeadership implements Node.
func (n *node) TransferLeadership(ctx context.Context, lead, transferee uint64) {
	// From names the transferee and To the current leader, so that the
	// request also works when it is stepped on the leader itself.
	m := transferLeaderMsg(lead, transferee)
	if _, ok := n.stepInline(&m); ok {
		return
	}
	n.queued.Add(1)
	select {
	case n.recvc <- m:
	case <-n.done:
		n.queued.Add(-1)
	case <-ctx.Done():
		n.queued.Add(-1)
	}
}

// ForgetLeader implements Node.
func (n *node) ForgetLeader(ctx context.Context) error {
	return n.send(ctx, forgetLeaderMsg(), nil /* no wait */)
}

// ReadIndex implements Node.
func (n *node) ReadIndex(ctx context.Context, rctx []byte) error {
	return n.send(ctx, readIndexMsg(rctx), nil /* no wait */)
}

// The requests below are what the application asks of a node; Node and
// RawNode build them the same way. Local requests that name a peer carry it
// in From, where raft looks for the subject of a request.

func campaignMsg() pb.Message { return pb.Message{Type: pb.MsgHup} }

func proposalMsg(data []byte) pb.Message {
	return pb.Message{Type: pb.MsgProp, Entries: []pb.Entry{{Data: data}}}
}

// confChangeProposal wraps cc into the proposal that carries it.
func confChangeProposal(cc pb.ConfChangeI) (pb.Message, error) {
	typ, data, err := pb.MarshalConfChange(cc)
	if err != nil {
		return pb.Message{}, err
	}
	return pb.Message{Type: pb.MsgProp, Entries: []pb.Entry{{Type: typ, Data: data}}}, nil
}

func readIndexMsg(rctx []byte) pb.Message {
	return pb.Message{Type: pb.MsgReadIndex, Entries: []pb.Entry{{Data: rctx}}}
}

// transferLeaderMsg asks lead (None: whoever steps it) to hand leadership to
// transferee.
func transferLeaderMsg(lead, transferee uint64) pb.Message {
	return pb.Message{Type: pb.MsgTransferLeader, From: transferee, To: lead}
}

func forgetLeaderMsg() pb.Message { return pb.Message{Type: pb.MsgForgetLeader} }

func unreachableMsg(id uint64) pb.Message { return pb.Message{Type: pb.MsgUnreachable, From: id} }

func snapStatusMsg(id uint64, status SnapshotStatus) pb.Message {
	return pb.Message{Type: pb.MsgSnapStatus, From: id, Reject: status == SnapshotFailure}
}
