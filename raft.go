package raft

import (
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/raftkit/raft/confchange"
	pb "github.com/raftkit/raft/raftpb"
	"github.com/raftkit/raft/tracker"
)

const (
	// None is the node ID that names no node, e.g. as the leader when none
	// is known.
	None uint64 = 0
	// LocalAppendThread is the target of MsgStorageAppend messages under
	// AsyncStorageWrites: the local thread that makes unstable entries,
	// HardState changes and snapshots durable.
	LocalAppendThread uint64 = math.MaxUint64
	// LocalApplyThread is the target of MsgStorageApply messages under
	// AsyncStorageWrites: the local thread that applies committed entries to
	// the state machine.
	LocalApplyThread uint64 = math.MaxUint64 - 1
)

// StateType is the role a node plays in its group.
type StateType uint64

// The roles of a node.
const (
	StateFollower StateType = iota
	StateCandidate
	StateLeader
	StatePreCandidate
	numStates
)

var stateTypeNames = [numStates]string{
	StateFollower:     "StateFollower",
	StateCandidate:    "StateCandidate",
	StateLeader:       "StateLeader",
	StatePreCandidate: "StatePreCandidate",
}

// String returns the role's name, e.g. "StateLeader".
func (st StateType) String() string {
	if st >= numStates {
		return fmt.Sprintf("StateType(%d)", uint64(st))
	}
	return stateTypeNames[st]
}

// MarshalJSON encodes the role as its quoted name.
func (st StateType) MarshalJSON() ([]byte, error) {
	return []byte(fmt.Sprintf("%q", st.String())), nil
}

// CampaignType says why a node campaigns. It is a string so that a transfer
// campaign can name itself in a vote request's Context.
type CampaignType string

const (
	// campaignPreElection is the trial round of an election with PreVote.
	campaignPreElection CampaignType = "CampaignPreElection"
	// campaignElection is a real election: after a timeout, or after a won
	// trial round.
	campaignElection CampaignType = "CampaignElection"
	// campaignTransfer is an election started by MsgTimeoutNow: it skips the
	// trial round and overrides the voters' leader lease.
	campaignTransfer CampaignType = "CampaignTransfer"
)

// ErrProposalDropped is returned when a proposal is refused (no known leader,
// forwarding disabled, a leadership transfer in progress, the uncommitted
// size limit, ...), so that the proposer can fail fast instead of waiting.
var ErrProposalDropped = errors.New("raft proposal dropped")

// raft is one node's protocol state machine. It does no I/O: it takes
// messages and ticks, and leaves messages, log changes and state for the
// RawNode to hand to the application.
type raft struct {
	id     uint64
	logger Logger

	// Term and Vote are the durable election state (with the commit index,
	// the HardState). Invariant: Vote was cast in Term, or is None.
	Term uint64
	Vote uint64

	// state is the node's role; it picks the step (stepByRole), and tick
	// is the role's handler of ticks.
	state StateType
	tick  func()
	// lead is the leader of Term as far as this node knows, or None.
	lead uint64
	// isLearner says that this node is a learner in the active
	// configuration. Learners never campaign.
	isLearner bool

	// log is the node's log, part of raft itself (not behind a pointer):
	// nearly every step reads it.
	log entryLog
	// trk is the active configuration with the progress of every member.
	trk tracker.ProgressTracker
	// order is trk's members in ID order and its commit rule, remade
	// whenever a configuration is installed (adoptConfig), the only
	// place trk's configuration or Progress map changes.
	order tracker.MemberOrder

	// Outboxes. msgs are to be sent right away and never target this node
	// (but see acksInOutbox: its trailing acknowledgements wait for the
	// write like those in msgsAfterAppend). msgsAfterAppend wait until everything unstable now (term, vote,
	// entries, snapshot, including what an earlier Ready already handed
	// out) is durable, because they promise durability (thesis §3.8): they
	// are MsgAppResp, MsgVoteResp or MsgPreVoteResp, and may target this
	// node itself. readStates are answered reads for the application.
	msgs            []pb.Message
	msgsAfterAppend []pb.Message
	readStates      []ReadState
	// outboxRoom is what a full msgs grows by (see enqueue).
	outboxRoom int
	// acksToPeers counts the messages in msgsAfterAppend addressed to other
	// nodes. A leader's own acknowledgements, one per append, may number
	// thousands between two Readys, and Node builds the Ready on offer
	// again after every proposal: without the count each build would scan
	// them all for none.
	acksToPeers int
	// acksInOutbox is set by a synchronous RawNode, which hands out a
	// Ready's messages only once the Ready is persisted: then the
	// acknowledgements to other nodes may wait at the end of msgs instead
	// of in msgsAfterAppend, and are not copied from one to the other for
	// every Ready. trailingAcks counts them; messages sent after them are
	// put before them (keepAcksLast), so that msgs stays in Ready order.
	// Both are reset when a Ready hands msgs out.
	acksInOutbox bool
	trailingAcks int

	// Timers, in ticks. electionElapsed counts: for a follower, since it
	// last heard from the leader (or granted a vote) or timed out; for a
	// candidate, since it began campaigning; for a leader, since the last
	// CheckQuorum round. heartbeatElapsed counts a leader's ticks since its
	// last heartbeat round.
	electionElapsed  int
	heartbeatElapsed int
	electionTimeout  int
	heartbeatTimeout int
	// randomizedElectionTimeout is drawn from [electionTimeout,
	// 2*electionTimeout) on every reset, so that nodes rarely time out
	// together and split the vote (thesis §3.4).
	randomizedElectionTimeout int
	// jitter draws the random part of the election timeout: a value in
	// [0, n). It is the package's shared source unless a test sets another
	// (useJitter, reached from outside through internal/knobs).
	jitter func(n int) int

	// Leader-only state, cleared on every role change.
	//
	// leadTransferee is the target of an ongoing leadership transfer
	// (thesis §3.10), or None. pendingConfIndex is at least the index of
	// the latest configuration change that may still be unapplied; a new
	// change is accepted only once applied has passed it, so at most one is
	// in flight. uncommitted is the uncommitted log tail's payload size and
	// limit. readOnly queues safe reads, and
	// pendingReadIndexMessages holds reads that arrived before the leader
	// committed an entry of its own term (its commit index may trail its
	// predecessor's until then).
	leadTransferee           uint64
	pendingConfIndex         uint64
	uncommitted              uncommittedTail
	readOnly                 *readOnly
	pendingReadIndexMessages []pb.Message

	// Settings from Config.
	maxMsgSize                  entryEncodingSize // MaxSizePerMsg
	checkQuorum                 bool
	preVote                     bool
	disableProposalForwarding   bool
	disableConfChangeValidation bool
	stepDownOnRemoval           bool
	fastFailover                bool // RawNode.SetFastFailover

	// lease is the lease bookkeeping of ReadOnlyLeaseBased (lease.go).
	lease leaseState

	// droppedMsgs counts messages Step refused as malformed.
	droppedMsgs uint64
}

// raftFromConfig builds a node from c and the state in c.Storage; see init.
func raftFromConfig(c *Config) *raft {
	r := &raft{}
	r.init(c)
	return r
}

// init sets r up as a node built from c and the state in c.Storage. c must
// be valid; an invalid Config or unreadable storage leaves nothing to run
// and panics (RawNode validates first and returns the error instead). In
// place, so that RawNode can hold its raft inline.
func (r *raft) init(c *Config) {
	if err := c.checkAndFill(); err != nil {
		panic(err.Error())
	}
	hs, cs, err := c.Storage.InitialState()
	if err != nil {
		panic(fmt.Errorf("raft: reading the initial state from storage: %w", err))
	}
	*r = raft{
		id:                          c.ID,
		maxMsgSize:                  entryEncodingSize(c.MaxSizePerMsg),
		uncommitted:                 uncommittedTail{max: entryPayloadSize(c.MaxUncommittedEntriesSize)},
		trk:                         tracker.MakeProgressTracker(c.MaxInflightMsgs, c.MaxInflightBytes),
		electionTimeout:             c.ElectionTick,
		heartbeatTimeout:            c.HeartbeatTick,
		jitter:                      sharedJitter.Intn,
		logger:                      c.Logger,
		checkQuorum:                 c.CheckQuorum,
		preVote:                     c.PreVote,
		readOnly:                    newReadQueue(c.ReadOnlyOption),
		disableProposalForwarding:   c.DisableProposalForwarding,
		disableConfChangeValidation: c.DisableConfChangeValidation,
		stepDownOnRemoval:           c.StepDownOnRemoval,
		outboxRoom:                  outboxRoomGiven,
	}
	r.log.open(c.Storage, c.Logger, entryEncodingSize(c.MaxCommittedSizePerReady))
	r.fitLog(c)
	r.restoreConfState(cs, r.log.last())
	if !IsEmptyHardState(hs) {
		r.adoptHardState(hs)
	}
	if c.Applied > 0 {
		r.log.markApplied(c.Applied, 0 /* size */)
	}
	r.toFollower(r.Term, None /* lead */)
	r.startLease(hs)
	r.logStart()
}

// logStart logs the state the node starts from.
func (r *raft) logStart() {
	var peers []string
	for _, id := range r.trk.VoterNodes() {
		peers = append(peers, fmt.Sprintf("%x", id))
	}
	last := r.log.lastID()
	r.logger.Infof("newRaft %x [peers: [%s], term: %d, commit: %d, applied: %d, lastindex: %d, lastterm: %d]",
		r.id, strings.Join(peers, ","), r.Term, r.log.committed, r.log.applied, last.index, last.term)
}

// restoreConfState installs the configuration cs, as found in storage or in
// a snapshot, into a fresh tracker; new peers start probing at lastIndex.
// A ConfState that does not describe a valid configuration panics: callers
// hand in only configurations this library produced or already checked.
func (r *raft) restoreConfState(cs pb.ConfState, lastIndex uint64) {
	fresh, cfg, prs, err := r.configFromConfState(cs, lastIndex)
	if err != nil {
		panic(fmt.Sprintf("raft: unable to restore config %+v: %s", cs, err))
	}
	r.trk = fresh
	mustMatchConfState(r.logger, cs, r.adoptConfig(cfg, prs))
}

// configFromConfState computes, without installing anything, the empty
// tracker (with this node's flow-control limits) and the configuration and
// progress that cs describes.
func (r *raft) configFromConfState(cs pb.ConfState, lastIndex uint64) (tracker.ProgressTracker, tracker.Config, tracker.ProgressMap, error) {
	fresh := tracker.MakeProgressTracker(r.trk.MaxInflight, r.trk.MaxInflightBytes)
	cfg, prs, err := confchange.Restore(confchange.Changer{Tracker: fresh, LastIndex: lastIndex}, cs)
	return fresh, cfg, prs, err
}

// volatileState is the volatile state that Ready reports on change.
func (r *raft) volatileState() SoftState { return SoftState{Lead: r.lead, RaftState: r.state} }

// durableState is the state that must be durable before messages that depend
// on it are sent.
func (r *raft) durableState() pb.HardState {
	return pb.HardState{Term: r.Term, Vote: r.Vote, Commit: r.log.committed}
}

// adoptHardState restores the durable state read from storage. A commit index
// the log cannot hold means storage is corrupt, and panics.
func (r *raft) adoptHardState(hs pb.HardState) {
	if hs.Commit < r.log.committed || hs.Commit > r.log.last() {
		panic(fmt.Sprintf("raft: %x HardState commit index %d is outside [%d, %d]",
			r.id, hs.Commit, r.log.committed, r.log.last()))
	}
	r.log.committed = hs.Commit
	r.Term, r.Vote = hs.Term, hs.Vote
}

// enterTerm clears everything that belongs to a role, entering term (and
// forgetting the vote if the term changes). Every peer's progress restarts
// at the end of the log.
func (r *raft) enterTerm(term uint64) {
	if r.Term != term {
		r.Term, r.Vote = term, None
	}
	r.lead = None
	r.electionElapsed, r.heartbeatElapsed = 0, 0
	r.drawElectionTimeout()
	r.cancelTransfer()
	r.trk.ResetVotes()
	r.resetProgress()
	r.pendingConfIndex = 0
	r.uncommitted.size = 0
	r.readOnly = newReadQueue(r.readOnly.option)
}

// resetProgress forgets what is known about every peer: nothing matched,
// next send right after the last entry. The node itself matches its log.
func (r *raft) resetProgress() {
	last := r.log.last()
	r.order.Visit(func(id uint64, pr *tracker.Progress) {
		*pr = tracker.Progress{
			Next:      last + 1,
			Inflights: tracker.NewInflights(r.trk.MaxInflight, r.trk.MaxInflightBytes),
			IsLearner: pr.IsLearner,
		}
		if id == r.id {
			pr.Match = last
		}
	})
}

// setRole switches to role state with its handler of ticks (the step
// follows state, see stepByRole). Only the leader ticks heartbeats.
func (r *raft) setRole(state StateType) {
	r.state = state
	if state == StateLeader {
		r.tick = r.tickLeader
	} else {
		r.tick = r.tickElectionClock
	}
}

// mustNotLead panics if the node is leader: a leader only leaves office by
// becoming a follower.
func (r *raft) mustNotLead(next StateType) {
	if r.state == StateLeader {
		panic(fmt.Sprintf("raft: %x cannot go from leader to %s at term %d", r.id, next, r.Term))
	}
}

// toFollower makes the node a follower of lead (None if unknown) in
// term.
func (r *raft) toFollower(term uint64, lead uint64) {
	r.enterTerm(term)
	r.setRole(StateFollower)
	r.lead = lead
	r.logger.Infof("%x became follower at term %d", r.id, r.Term)
}

// toCandidate starts a real election: a new term, voting for itself.
func (r *raft) toCandidate() {
	r.mustNotLead(StateCandidate)
	r.enterTerm(r.Term + 1)
	r.setRole(StateCandidate)
	r.Vote = r.id
	r.logger.Infof("%x became candidate at term %d", r.id, r.Term)
}

// toPreCandidate starts the trial round of PreVote. Nothing durable
// changes (term and vote stay): the round only asks whether an election
// could be won.
func (r *raft) toPreCandidate() {
	r.mustNotLead(StatePreCandidate)
	r.trk.ResetVotes()
	r.setRole(StatePreCandidate)
	r.lead = None
	r.logger.Infof("%x became pre-candidate at term %d", r.id, r.Term)
}

// toLeader takes over the term the node won and appends an empty entry
// of that term: a leader may only commit by counting entries of its own
// term (thesis §3.6.2), so this entry is what commits its predecessors'.
func (r *raft) toLeader() {
	if r.state == StateFollower {
		panic(fmt.Sprintf("raft: %x cannot become leader from follower at term %d", r.id, r.Term))
	}
	r.enterTerm(r.Term)
	r.setRole(StateLeader)
	r.lead = r.id
	r.takeOffice()
	// The leader trivially holds its own log, and counts as active for
	// CheckQuorum.
	self := r.trk.Progress[r.id]
	self.BecomeReplicate()
	self.RecentActive = true
	// Some entry in the tail may be an unapplied conf change; rather than
	// scan for it, refuse new changes until the whole tail is applied.
	r.pendingConfIndex = r.log.last()
	if !r.appendOwn(pb.Entry{Data: nil}) {
		// An empty payload is exempt from the uncommitted-size limit.
		panic(fmt.Sprintf("raft: %x dropped its empty leader entry at term %d", r.id, r.Term))
	}
	r.logger.Infof("%x became leader at term %d", r.id, r.Term)
}
