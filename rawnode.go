package raft

import (
	"errors"
	"fmt"

	pb "github.com/raftkit/raft/raftpb"
	"github.com/raftkit/raft/tracker"
)

// RawNode is the raft state machine for one node, driven by the caller: it
// does nothing until called, and is not safe for concurrent use. Node wraps
// it with a goroutine and channels; the methods correspond, and Node's
// documentation describes them at more length.
type RawNode struct {
	// core is the state machine, held inline (one allocation less, one
	// pointer hop less on every call); raft points at it. Invariant:
	// raft == &core, which is why a RawNode must not be copied.
	core   raft
	raft   *raft
	noCopy noCopy

	// reported is what the last accepted Ready left the application
	// knowing; a Ready reports a state only when it differs.
	reported struct {
		soft *SoftState
		hard pb.HardState
	}
	// pendingAcks, pendingDurable and pendingApplied are the
	// acknowledgements that become true once the application has handled
	// the accepted Ready, which Advance steps in this order: the
	// self-addressed messages that waited for durability, the note that
	// the writes are durable (if hasPendingDurable) and the note that the
	// committed entries handed out are applied (if any). The notes are
	// kept as what they say rather than as ~200-byte messages, built only
	// when stepped. Synchronous mode only: with AsyncStorageWrites they
	// travel in the Responses of the storage messages instead.
	pendingAcks       []pb.Message
	pendingDurable    durableNote
	hasPendingDurable bool
	pendingApplied    []pb.Entry
	// outbox is the message slice of the Ready built last, uncapped.
	outbox []pb.Message
	// lent is the Messages of the last accepted Ready that had any,
	// uncapped (synchronous mode only); see lend.
	lent []pb.Message
	// sentMark is a high-water mark of the outbox's length when a Ready
	// is accepted, lowered by a quarter at
	// each Ready so that it follows the traffic down after a burst (see
	// trimOutboxes).
	sentMark int
	// proposal backs the entries of a leader's proposals (see Propose) and
	// read requests (see ReadIndex).
	proposal [1]pb.Entry
	// async is Config.AsyncStorageWrites.
	async bool
	// lending: the arrays behind Ready.Messages come back for reuse (see
	// LendMessages and lend).
	lending bool
	// lendingReads: the arrays behind Ready.ReadStates come back for reuse
	// (see LendReadStates and lendReadStates).
	lendingReads bool
	// lentReads is the ReadStates of the last accepted Ready that had any,
	// uncapped, when lendingReads.
	lentReads []ReadState
}

// NewRawNode returns a RawNode for config, or the error that makes config
// invalid. The state is loaded from config.Storage.
//
// A brand-new node starts from empty storage; see Bootstrap for giving it its
// initial configuration (what StartNode's peers used to do). The preferred
// way is to prepare the Storage instead: a snapshot at a non-zero index
// (index 1, term 1 will do) whose ConfState is the initial configuration.
//
// The commit index may start above the stored one, at the second-to-last
// configuration change in the log (see "Configuration after a restart" in
// the package documentation); the first Ready then reports it.
func NewRawNode(config *Config) (*RawNode, error) {
	if err := config.checkAndFill(); err != nil {
		return nil, err
	}
	rn := &RawNode{async: config.AsyncStorageWrites}
	rn.core.init(config)
	rn.raft = &rn.core
	rn.raft.acksInOutbox = !rn.async
	soft := rn.raft.volatileState()
	rn.reported.soft, rn.reported.hard = &soft, rn.raft.durableState()
	// After recording the durable HardState, so that the first Ready
	// reports the raised commit index (see restart_commit.go).
	rn.raft.commitSettledConfChanges()
	return rn, nil
}

// ErrStepLocalMsg is returned by RawNode.Step for a message type that only
// the node itself may create (such as MsgHup), coming from anyone but the
// local storage threads.
var ErrStepLocalMsg = errors.New("raft: cannot step raft local message")

// ErrStepPeerNotFound is returned by RawNode.Step for a response from a node
// that is not in the configuration.
var ErrStepPeerNotFound = errors.New("raft: cannot step as peer not found")

// Propose asks for data to be appended to the log. It returns
// ErrProposalDropped if the node cannot take proposals now (no leader known,
// a leadership transfer in progress, the uncommitted log too large, ...).
func (rn *RawNode) Propose(data []byte) error {
	if rn.raft.state != StateLeader {
		// A follower forwards the message, entries and all: they must be
		// its own.
		m := proposalMsg(data)
		m.From = rn.raft.id
		return rn.raft.stepMsg(&m)
	}
	// A leader copies proposed entries into its log and keeps no reference
	// to the proposal's slice, which can therefore be a buffer of ours.
	// The message goes straight to the leader's handler: Step's checks and
	// dispatch (a termless proposal of one normal entry, from the node
	// itself, on a leader) would lead nowhere else.
	rn.proposal[0] = pb.Entry{Data: data}
	m := pb.Message{Type: pb.MsgProp, From: rn.raft.id, Entries: rn.proposal[:]}
	err := rn.raft.handlePropose(&m)
	rn.proposal[0] = pb.Entry{} // drop the reference to data
	return err
}

// ProposeConfChange proposes a configuration change; see
// Node.ProposeConfChange.
func (rn *RawNode) ProposeConfChange(cc pb.ConfChangeI) error {
	m, err := confChangeProposal(cc)
	if err == nil {
		err = rn.raft.Step(m)
	}
	return err
}

// ApplyConfChange applies a configuration change found in the committed
// entries and returns the new configuration. It must be called for every
// committed change, in log order, unless the application rejects the change,
// in which case it must not be called.
func (rn *RawNode) ApplyConfChange(cc pb.ConfChangeI) *pb.ConfState {
	cs := rn.raft.applyConfigChange(cc.AsV2())
	return &cs
}

// Campaign starts an election, making the node a candidate (or a
// pre-candidate with PreVote).
func (rn *RawNode) Campaign() error {
	return rn.raft.Step(campaignMsg())
}

// Tick advances the logical clock by one tick, which may start an election
// (on a follower or candidate) or send heartbeats (on a leader).
func (rn *RawNode) Tick() { rn.raft.tick() }

// TickQuiesced advances the election clock by one tick and does nothing
// else: no election, heartbeat or quorum check is triggered by it. It lets an
// application stop ticking a group whose members are known to be in sync
// ("quiesced") while keeping time. It bypasses the state machine's timing
// rules, so use Tick unless you know exactly why not.
//
// Deprecated: This method will be removed in a future release.
func (rn *RawNode) TickQuiesced() { rn.raft.electionElapsed++ }

// Step hands a message received from a peer (or from a local storage thread,
// with AsyncStorageWrites) to the state machine. Local message types from
// anyone else are refused with ErrStepLocalMsg, and responses from nodes
// outside the configuration with ErrStepPeerNotFound.
func (rn *RawNode) Step(m pb.Message) error {
	if !IsLocalMsgTarget(m.From) {
		switch {
		case IsLocalMsg(m.Type):
			return ErrStepLocalMsg
		case IsResponseMsg(m.Type) && rn.raft.order.Progress(m.From) == nil:
			return ErrStepPeerNotFound
		}
	}
	return rn.raft.stepMsg(&m)
}

// buildReady builds the outstanding Ready without changing anything,
// so it can be built, discarded and built again (Node does that while the
// application is not ready to take it). handOutReady commits to it.
//
// It fills *rd, which must be the zero Ready: a Ready is ~300 bytes, and
// built in place it is not copied on its way to the caller.
func (rn *RawNode) buildReady(rd *Ready) {
	r := rn.raft
	rd.SoftState, rd.HardState = rn.changedSoftState(), rn.changedHardState()
	if n := len(r.readStates); n != 0 {
		// Capped: the array goes on serving raft (see addReadState).
		rd.ReadStates = r.readStates[:n:n]
	}
	rd.Entries = r.log.toPersist()
	rd.MustSync = MustSync(r.durableState(), rn.reported.hard, len(rd.Entries))
	if snap := r.log.snapshotToPersist(); snap != nil {
		rd.Snapshot = *snap
	}
	rd.CommittedEntries = r.log.toApply(rn.appliesUndurable())
	var out []pb.Message
	if rn.async {
		out = appendStorageWork(r, r.msgs, rd)
	} else {
		out = appendAfterPersist(r, r.msgs)
	}
	// Capped: the outbox array goes on serving raft, in its unused rest
	// (AsyncStorageWrites) or once the application has taken the next
	// Ready (see lend), and an append by the application must not write
	// into it meanwhile.
	rn.outbox = out
	if len(out) != 0 {
		rd.Messages = out[:len(out):len(out)]
	}
}

// changedSoftState returns the soft state if it differs from the one last
// reported, else nil.
func (rn *RawNode) changedSoftState() *SoftState {
	soft := rn.raft.volatileState()
	if soft.sameAs(rn.reported.soft) {
		return nil
	}
	// Copied only here, so that the common unchanged case does not move the
	// local to the heap.
	changed := soft
	return &changed
}

// changedHardState returns the hard state if it differs from the one last
// reported, else the empty HardState.
func (rn *RawNode) changedHardState() pb.HardState {
	if hard := rn.raft.durableState(); !sameHardState(hard, rn.reported.hard) {
		return hard
	}
	return emptyState
}

// appendAfterPersist adds to msgs the messages that wait for durability and
// go to other nodes. Synchronously, the application sends a Ready's messages
// only once the Ready is persisted, so these may go with the rest; the ones
// addressed to this node are stepped by Advance instead. (A RawNode's raft
// queues them in msgs already, see acksInOutbox; then there are none here.)
func appendAfterPersist(r *raft, msgs []pb.Message) []pb.Message {
	if r.acksToPeers == 0 {
		return msgs
	}
	for i := range r.msgsAfterAppend {
		if r.msgsAfterAppend[i].To != r.id {
			msgs = enqueue(msgs, r.msgsAfterAppend[i], r.outboxRoom)
		}
	}
	return msgs
}

// MustSync reports whether moving from the persisted state prevst to st,
// plus entsnum new entries, must be written durably (with fsync) before
// messages go out. The term, the vote and the log are what Raft requires on
// stable storage before answering anyone (thesis §3.8); the commit index can
// always be recovered, so a change of it alone needs no sync.
func MustSync(st, prevst pb.HardState, entsnum int) bool {
	return entsnum != 0 || st.Term != prevst.Term || st.Vote != prevst.Vote
}

// handOutReady records that rd, built by buildReady with nothing
// changed since, is handed to the application: its contents are not offered
// again, and raft lets go of the slices it shares with rd.
func (rn *RawNode) handOutReady(rd *Ready) {
	r := rn.raft
	rn.rememberStates(rd)
	if !rn.async {
		rn.queuePendingAcks(rd)
	}
	// Unless they are lent (see LendMessages and lend), the messages are the
	// application's for good: the outbox goes on in the array's unused
	// rest, which no Ready has seen (enqueue only writes past the length).
	// With AsyncStorageWrites msgsAfterAppend went out too (as Responses);
	// synchronously it was only copied (into Messages and pendingAcks), so
	// its array is reused at once.
	rn.sentMark = max(len(rn.outbox), rn.sentMark*3/4)
	r.acksToPeers, r.trailingAcks = 0, 0
	if rn.lending {
		rn.lend(rn.outbox)
	} else {
		r.msgs = rn.outbox[len(rn.outbox):]
	}
	if rn.async {
		r.msgsAfterAppend = nil
	} else {
		forgetRefs(r.msgsAfterAppend)
		r.msgsAfterAppend = r.msgsAfterAppend[:0]
	}
	rn.outbox = nil
	r.log.markPersisting()
	if n := len(rd.CommittedEntries); n != 0 {
		r.log.markApplying(rd.CommittedEntries[n-1].Index, r.log.pacedSize(rd.CommittedEntries),
			rn.appliesUndurable())
	}
}

// rememberStates records the states rd reports as the new baseline, and
// drops the read states it hands out.
func (rn *RawNode) rememberStates(rd *Ready) {
	if len(rd.ReadStates) != 0 {
		rn.handOutReadStates()
	}
	if !IsEmptyHardState(rd.HardState) {
		rn.reported.hard = rd.HardState
	}
	if rd.SoftState != nil {
		rn.reported.soft = rd.SoftState
	}
}

// queuePendingAcks collects what Advance will step once the application
// has handled rd: the same acknowledgements that the storage threads would
// deliver with AsyncStorageWrites, in the same order.
func (rn *RawNode) queuePendingAcks(rd *Ready) {
	r := rn.raft
	if n := rn.countPendingAcks(); n != 0 {
		// Misuse, but one that leaves raft unable to tell which writes are
		// durable; nothing sensible can follow it.
		panic(fmt.Sprintf("raft: a second Ready was accepted without a call to Advance (%d acknowledgements pending)", n))
	}
	for i := range r.msgsAfterAppend {
		if r.msgsAfterAppend[i].To == r.id {
			rn.pendingAcks = append(rn.pendingAcks, r.msgsAfterAppend[i])
		}
	}
	rn.pendingDurable, rn.hasPendingDurable = takeDurableNote(r, rd)
	if len(rd.CommittedEntries) != 0 {
		rn.pendingApplied = rd.CommittedEntries
	}
}

// countPendingAcks is the number of acknowledgements Advance would step.
func (rn *RawNode) countPendingAcks() int {
	n := len(rn.pendingAcks)
	if rn.hasPendingDurable {
		n++
	}
	if rn.pendingApplied != nil {
		n++
	}
	return n
}

// stepPendingNotes steps the notes queued by queuePendingAcks, durability
// first, as the storage threads would deliver them, and forgets them.
func (rn *RawNode) stepPendingNotes() {
	r := rn.raft
	if rn.hasPendingDurable {
		var m pb.Message
		rn.pendingDurable.fill(&m, r.id)
		rn.pendingDurable, rn.hasPendingDurable = durableNote{}, false
		if m.Term == r.Term && m.Term != 0 && m.Snapshot == nil {
			// Built by raft itself in its current term: Step's checks
			// would pass it and its term comparison would lead here.
			r.handleStorageAppendResp(&m)
		} else {
			_ = r.stepMsg(&m) // stale, or with a snapshot to check
		}
	}
	if ents := rn.pendingApplied; ents != nil {
		rn.pendingApplied = nil
		var m pb.Message
		fillAppliedNote(&m, r.id, ents)
		if ents[len(ents)-1].Index <= r.log.committed {
			// Committed entries, as handed out (committed never goes
			// down): the only check Step makes on a termless note.
			r.handleStorageApplyResp(&m)
		} else {
			_ = r.stepMsg(&m)
		}
	}
}

// appliesUndurable reports whether committed entries may be handed out
// for applying before they are durable locally. Synchronously the
// application persists a Ready's entries before applying its committed
// entries, so it may; with AsyncStorageWrites the two threads are not
// ordered, so it may not.
func (rn *RawNode) appliesUndurable() bool {
	return !rn.async
}

// Ready returns the work outstanding since the last Ready and marks it as
// handed out. The application must handle it as the package documentation
// describes and then (without AsyncStorageWrites) call Advance before asking
// for the next one.
func (rn *RawNode) Ready() (rd Ready) {
	rn.buildReady(&rd)
	rn.handOutReady(&rd)
	return rd
}

// HasReady reports whether Ready would have anything in it.
func (rn *RawNode) HasReady() bool {
	r := rn.raft
	if len(r.msgs) != 0 || len(r.msgsAfterAppend) != 0 || len(r.readStates) != 0 {
		return true
	}
	if soft := r.volatileState(); !soft.sameAs(rn.reported.soft) {
		return true
	}
	// A node that never had any hard state has nothing to report even if
	// the baseline was reset (Bootstrap does that).
	if hard := r.durableState(); !IsEmptyHardState(hard) && !sameHardState(hard, rn.reported.hard) {
		return true
	}
	return r.log.hasSnapshotToPersist() || r.log.hasToPersist() ||
		r.log.hasToApply(rn.appliesUndurable())
}

// Advance tells the RawNode that the last Ready has been handled: its state
// persisted, its messages sent and its committed entries applied. The Ready
// argument is not used (what to acknowledge was recorded when the Ready was
// handed out); it stays for compatibility.
//
// Advance must not be called with AsyncStorageWrites, where the responses of
// the local storage threads take its place; doing so panics.
func (rn *RawNode) Advance(_ Ready) {
	if rn.async {
		panic("raft: RawNode.Advance must not be called when using AsyncStorageWrites")
	}
	steps := rn.pendingAcks
	for i := range steps {
		// These acknowledgements cannot be refused; stepping them only
		// fails for stale ones, which are ignored anyway.
		_ = rn.raft.stepMsg(&steps[i])
	}
	forgetRefs(steps) // let go of the entries they reference
	rn.pendingAcks = steps[:0]
	rn.stepPendingNotes()
	if len(rn.raft.msgs) == 0 {
		// Nothing to send, perhaps for long (a quiet group): keep no big
		// arrays around for the next burst.
		rn.trimOutboxes()
	}
}

// ProgressType tells which kind of member a Progress passed to a
// WithProgress visitor belongs to.
type ProgressType byte

const (
	// ProgressTypePeer marks the progress of a voter.
	ProgressTypePeer ProgressType = iota
	// ProgressTypeLearner marks the progress of a learner.
	ProgressTypeLearner
)

// WithProgress calls visitor with the progress of every member, in
// increasing ID order, without allocating. Only a leader tracks meaningful
// progress. The Progress passed is a copy without its Inflights, which stay
// the leader's own.
func (rn *RawNode) WithProgress(visitor func(id uint64, typ ProgressType, pr tracker.Progress)) {
	rn.raft.order.Visit(func(id uint64, pr *tracker.Progress) {
		cp := *pr
		cp.Inflights = nil
		visitor(id, progressTypeOf(&cp), cp)
	})
}

func progressTypeOf(pr *tracker.Progress) ProgressType {
	if pr.IsLearner {
		return ProgressTypeLearner
	}
	return ProgressTypePeer
}

// Status returns the node's status including, on a leader, a copy of every
// follower's progress. BasicStatus and WithProgress avoid the allocations.
func (rn *RawNode) Status() Status { return collectStatus(&rn.core) }

// BasicStatus returns the node's status without the progress map.
func (rn *RawNode) BasicStatus() BasicStatus { return collectBasicStatus(&rn.core) }

// ReadIndex asks for a read index for the request context rctx. The answer
// arrives in a later Ready's ReadStates, carrying rctx: once the application
// has applied up to its Index, reads issued before the request are
// linearizable.
func (rn *RawNode) ReadIndex(rctx []byte) {
	r := rn.raft
	if r.state != StateLeader {
		// A follower forwards the request, entries and all: they must be
		// its own.
		_ = r.Step(readIndexMsg(rctx))
		return
	}
	// A leader keeps only rctx (in the ReadState, and in the pending read
	// while a quorum confirms it, see startRound), never the request's
	// entries beyond this step (a request deferred until the leader commits
	// in its term is copied, see handleReadIndex), so they can be a buffer
	// of ours. As with Propose, the request goes straight to the leader's
	// handler.
	rn.proposal[0] = pb.Entry{Data: rctx}
	m := pb.Message{Type: pb.MsgReadIndex, Entries: rn.proposal[:]}
	r.handleReadIndex(&m)
	rn.proposal[0] = pb.Entry{} // drop the reference to rctx
}

// TransferLeader asks this node, if it leads, to hand leadership over to
// transferee (a follower forwards the request to its leader).
func (rn *RawNode) TransferLeader(transferee uint64) {
	_ = rn.raft.Step(transferLeaderMsg(None, transferee))
}

// ForgetLeader makes a follower forget its leader for the rest of the term;
// see Node.ForgetLeader.
func (rn *RawNode) ForgetLeader() error {
	return rn.raft.Step(forgetLeaderMsg())
}

// ReportUnreachable reports that the last message sent to node id could not
// be delivered; a leader then goes back to probing that follower.
func (rn *RawNode) ReportUnreachable(id uint64) {
	_ = rn.raft.Step(unreachableMsg(id))
}

// ReportSnapshot reports the outcome of sending a snapshot to node id; see
// Node.ReportSnapshot.
func (rn *RawNode) ReportSnapshot(id uint64, status SnapshotStatus) {
	_ = rn.raft.Step(snapStatusMsg(id, status))
}
