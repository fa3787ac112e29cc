package raft

import "errors"

// Config holds the parameters of one Raft node. NewRawNode, StartNode and
// RestartNode check it (see checkAndFill) and fill in defaults for zero fields
// that have one; a Config must not be shared between nodes.
type Config struct {
	// ID identifies this node within its group. It must be non-zero (0 is
	// None, "no node") and must not be LocalAppendThread or LocalApplyThread,
	// which name the local storage threads.
	ID uint64

	// ElectionTick is the election timeout, counted in calls to Tick. A
	// follower or candidate that hears nothing from a current leader for a
	// randomized timeout in [ElectionTick, 2*ElectionTick) starts an election.
	// A leader with CheckQuorum steps down if it has not heard from a quorum
	// within ElectionTick, and abandons a leadership transfer that has not
	// finished within it. Must be greater than HeartbeatTick; about ten times
	// HeartbeatTick keeps spurious elections rare.
	ElectionTick int
	// HeartbeatTick is the heartbeat interval in calls to Tick: a leader
	// sends heartbeats to every peer this often. Must be positive.
	HeartbeatTick int

	// Storage is where the node reads its durable state from: the initial
	// HardState and ConfState when it starts, and log entries and snapshots
	// it needs later. The application writes to it (the Ready contract); raft
	// only reads. Required.
	Storage Storage
	// Applied is the index of the last entry the application had applied
	// before a restart. Entries up to it are never handed out for applying
	// again. Leave it 0 for a fresh node, or if the application can apply
	// entries twice.
	Applied uint64

	// AsyncStorageWrites switches the node to the message-based storage
	// interface: instead of the Entries, HardState, Snapshot and
	// CommittedEntries fields of Ready (and Advance), the Ready's messages
	// contain MsgStorageAppend messages to LocalAppendThread and
	// MsgStorageApply messages to LocalApplyThread. The application performs
	// each message's writes, in order per target, and then delivers the
	// responses the message carries (after making appends durable, if it
	// carries responses). Appends and applies then overlap with the next
	// Ready, which lowers commit latency and raises throughput.
	AsyncStorageWrites bool

	// MaxSizePerMsg bounds the encoded size of the entries in one append
	// message (one entry always fits, whatever its size). Small values make
	// probing and lost messages cheap; large ones help throughput.
	// math.MaxUint64 means no limit, 0 means one entry per message.
	MaxSizePerMsg uint64
	// MaxCommittedSizePerReady bounds the encoded size of committed entries
	// handed to the application and not yet reported applied, across Readys
	// and unacknowledged MsgStorageApply messages alike (the name is kept
	// for compatibility). Zero means MaxSizePerMsg.
	MaxCommittedSizePerReady uint64
	// MaxUncommittedEntriesSize bounds the payload bytes a leader keeps in
	// uncommitted entries; proposals beyond it fail with ErrProposalDropped.
	// An empty log tail always admits one proposal. Zero means no limit.
	MaxUncommittedEntriesSize uint64
	// MaxInflightMsgs bounds the append messages in flight to one follower
	// while replicating optimistically, so that the transport's buffers are
	// not flooded. Must be positive.
	MaxInflightMsgs int
	// MaxInflightBytes bounds the payload bytes in flight to one follower,
	// alongside MaxInflightMsgs; it caps the bandwidth-delay product, so with
	// a round trip of 100ms a 1MB bound allows at most about 10MB/s. Zero
	// means no limit; otherwise it must be at least MaxSizePerMsg.
	//
	// It also bounds the payload bytes of durable entries the node keeps in
	// memory (4 MiB when MaxInflightBytes is zero), so that what a follower
	// may have to be sent again, and what is still to be applied, is read
	// from memory instead of Storage. Past the bound the in-memory log
	// shrinks to the entries not durable yet, which are always kept.
	MaxInflightBytes uint64

	// CheckQuorum makes a leader step down when it has not heard from a
	// quorum for an election timeout, and makes nodes refuse votes while
	// they hear from a leader (the leader lease). Required by
	// ReadOnlyLeaseBased.
	CheckQuorum bool

	// PreVote makes a node ask for a trial vote before it bumps its term to
	// campaign (thesis §9.6), so that a node rejoining after a partition
	// cannot disrupt a working leader by its higher term.
	PreVote bool

	// ReadOnlyOption chooses how ReadIndex requests are served: ReadOnlySafe
	// confirms leadership with a quorum round trip for each request;
	// ReadOnlyLeaseBased trusts the leader lease and requires CheckQuorum.
	// The lease is safe while no voter's ticks run more than
	// (ElectionTick-1)/(ElectionTick-2) - 1 faster than the leader's (12.5%
	// at ElectionTick 10): stalled or burst ticks, and ticks fast-forwarded
	// after a restart, break it. See ReadOnlyLeaseBased for the full rule.
	ReadOnlyOption ReadOnlyOption

	// Logger receives the node's log output. Nil means the package logger
	// (see SetLogger). Several groups in one process may each have their own.
	Logger Logger

	// DisableProposalForwarding makes followers drop proposals (returning
	// ErrProposalDropped) instead of forwarding them to the leader; useful
	// when only the leader may compute a proposal's contents, for example
	// when it stamps it with a timestamp that must increase.
	DisableProposalForwarding bool

	// DisableConfChangeValidation turns off the best-effort checks a leader
	// applies to proposed configuration changes against the active
	// configuration (at most one unapplied change; leaving a joint
	// configuration only from one, entering one only from outside one). The
	// checks have false positives, because the active configuration can lag
	// the log, and false negatives, because they do not run against the
	// configuration the change will actually follow. Only disable them when
	// something above raft orders and validates changes: an invalid change
	// that gets applied panics.
	DisableConfChangeValidation bool

	// StepDownOnRemoval makes a leader step down to follower when a
	// configuration change removes it or demotes it to learner. Without it
	// the removed leader keeps leading until a new election.
	StepDownOnRemoval bool

	// TraceLogger receives state-machine trace events in builds with the
	// with_tla tag; other builds ignore it.
	TraceLogger TraceLogger
}

// checkAndFill checks c and fills in the defaults of zero fields. The error
// texts are etcd/raft's.
func (c *Config) checkAndFill() error {
	if err := c.checkIdentity(); err != nil {
		return err
	}
	if err := c.checkTicks(); err != nil {
		return err
	}
	if c.Storage == nil {
		return errors.New("storage cannot be nil")
	}
	c.fillSizeDefaults()
	if err := c.checkInflight(); err != nil {
		return err
	}
	if c.Logger == nil {
		c.Logger = packageLogger()
	}
	if c.ReadOnlyOption == ReadOnlyLeaseBased && !c.CheckQuorum {
		return errors.New("CheckQuorum must be enabled when ReadOnlyOption is ReadOnlyLeaseBased")
	}
	return nil
}

// checkIdentity rejects IDs that name no node or a local thread.
func (c *Config) checkIdentity() error {
	if c.ID == None {
		return errors.New("cannot use none as id")
	}
	if IsLocalMsgTarget(c.ID) {
		return errors.New("cannot use local target as id")
	}
	return nil
}

// checkTicks requires a positive heartbeat shorter than the election
// timeout, so that a live leader is always heard from in time.
func (c *Config) checkTicks() error {
	if c.HeartbeatTick <= 0 {
		return errors.New("heartbeat tick must be greater than 0")
	}
	if c.ElectionTick <= c.HeartbeatTick {
		return errors.New("election tick must be greater than heartbeat tick")
	}
	return nil
}

// fillSizeDefaults turns the zero "unset" of the size limits into their
// meaning. MaxCommittedSizePerReady defaults to MaxSizePerMsg because the
// two used to be one setting.
func (c *Config) fillSizeDefaults() {
	if c.MaxUncommittedEntriesSize == 0 {
		c.MaxUncommittedEntriesSize = noLimit
	}
	if c.MaxCommittedSizePerReady == 0 {
		c.MaxCommittedSizePerReady = c.MaxSizePerMsg
	}
}

// checkInflight checks the flow-control window, defaulting an unset byte
// bound to unlimited. A byte bound below the message size could never admit
// a full message.
func (c *Config) checkInflight() error {
	if c.MaxInflightMsgs <= 0 {
		return errors.New("max inflight messages must be greater than 0")
	}
	switch {
	case c.MaxInflightBytes == 0:
		c.MaxInflightBytes = noLimit
	case c.MaxInflightBytes < c.MaxSizePerMsg:
		return errors.New("max inflight bytes must be >= max message size")
	}
	return nil
}
