package multiraft

import (
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/raftkit/raft"
	"github.com/raftkit/raft/raftpb"
)

// Transport carries batches between hosts. Send must not block for long
// (queue and return; drop when a peer is slow or down: raft resends what
// matters). The receiving side hands each batch to its Host's Receive.
// MemNetwork and NetTransport implement it.
type Transport interface {
	Send(to HostID, b Batch)
}

// Application is the host's user: it receives what groups commit. The
// host calls it from its workers (Apply, ApplyRound and ReadIndexDone from
// its apply goroutine instead with HostConfig.ApplyQueue), at most one
// call at a time per group, in log order per group; calls for different
// groups may run concurrently.
type Application interface {
	// Apply hands over the committed entries of group g, in order. The
	// host already applied configuration changes among them to raft.
	Apply(g GroupID, ents []raftpb.Entry)
	// ReadIndexDone hands over answered ReadIndex requests of group g:
	// a read with context rs.RequestCtx may be served once the
	// application applied up to rs.Index.
	ReadIndexDone(g GroupID, rs []raft.ReadState)
	// Restore replaces group g's state with the snapshot's data; it is
	// called before Apply sees any entry after the snapshot.
	Restore(g GroupID, snap raftpb.Snapshot) error
}

// ProposalDropObserver may be implemented by the Application to hear of
// the proposals raft refused on this host (raft.ErrProposalDropped: no
// leader known, a leadership transfer pending on a leader here, a
// follower that does not forward): none of them was appended, so none
// will ever be applied, and a client waiting on one can be answered at
// once rather than at its timeout. A proposal this host forwarded to a
// leader elsewhere and dropped there is not reported: raft does not tell
// the forwarder. ProposalsDropped is called from the worker holding group
// g, with the data passed to Host.Propose, and must not block.
type ProposalDropObserver interface {
	ProposalsDropped(g GroupID, data [][]byte)
}

// HostConfig configures a Host. ID, Storage, Transport and App are
// required; other fields have defaults.
type HostConfig struct {
	// ID is this host's ID, which is also its replicas' raft ID in
	// every group.
	ID HostID
	// Peers are the other hosts whose liveness this host tracks (a host
	// pings each of them every PingTicks and declares one failed after
	// HostTimeoutTicks without hearing from it). Add more with AddPeer.
	Peers []HostID
	// Storage persists all groups' state.
	Storage Storage
	// Transport sends batches to other hosts.
	Transport Transport
	// App receives committed entries and read answers.
	App Application

	// Workers is the size of the worker pool. Zero means no workers:
	// the caller drives processing with RunPending (deterministic tests
	// and simulations). Default for New: 0; callers pick.
	Workers int
	// MaxBatch is the number of groups a worker takes per round; their
	// updates are saved in one Storage.SaveBatch call and their messages
	// sent in one batch per host. Default 64.
	MaxBatch int
	// MinSaveInterval paces the rounds' saves: a round starts its
	// Storage.SaveBatch no sooner than this after the previous round
	// started its own (if either holds several groups), and takes the
	// groups that become ready meanwhile. Under the load of many groups,
	// rounds then fill, and fsyncs, frames and CPU per write drop (see
	// docs/sharded-load.md), at the cost of up to this much
	// latency per round; a host whose last save is older does not wait.
	// Used only with Workers. Default 1ms; negative: no pacing (a round
	// still gathers while another saves).
	MinSaveInterval time.Duration
	// ApplyQueue lets the application's applies trail the rounds: a round
	// hands its committed entries and answered reads (ApplyRound or
	// Apply, then ReadIndexDone) to one apply goroutine of the host and
	// goes on, and up to this many rounds' applies may wait for it; a
	// round finding the queue full waits. Zero: each round waits for its
	// own applies, which then delay every group of the host when slow.
	// Raft's state (configuration changes, Advance) is never behind: the
	// application sees its calls in the same order, later, and must
	// track what it applied itself (serve reads and take snapshots at its
	// own applied index). Restore waits until the queue is empty. Used
	// only with Workers. Default 0.
	ApplyQueue int
	// AsyncSaves runs every group with raft's asynchronous storage
	// writes (raft.Config.AsyncStorageWrites): a round takes each
	// group's Ready, hands its writes to the host's saver and its
	// committed entries to the application, sends its messages and lets
	// the group go at once, without waiting for the disk. The saver
	// writes what the rounds handed it since its last save with one
	// Storage.SaveBatch, then delivers what waited for it: the
	// acknowledgements and votes to their hosts, raft's own notes of
	// durability back to the groups. So a group's next proposals and
	// answers are stepped, and its next appends leave, while its
	// previous write is still being synced, instead of waiting for the
	// round that holds it. Entries are applied only once durable here
	// (raft hands them out then), and no acknowledgement or vote leaves
	// before the write it answers for is durable. MinSaveInterval then
	// paces the rounds (a round of several groups starts no sooner than
	// that after the previous one), not the saves: the saver writes
	// whenever it has something and is done with its last write, so its
	// saves gather what arrived during the previous fsync. Default false.
	AsyncSaves bool
	// TickInterval is the period of the host's ticker. Zero means no
	// ticker: the caller calls Tick.
	TickInterval time.Duration

	// ElectionTick and HeartbeatTick are raft's, for every group
	// (defaults 10 and 1).
	ElectionTick  int
	HeartbeatTick int
	// CheckQuorum, PreVote and ReadOnlyOption are raft's, for every
	// group. ReadOnlyLeaseBased requires CheckQuorum.
	CheckQuorum    bool
	PreVote        bool
	ReadOnlyOption raft.ReadOnlyOption
	// MaxSizePerMsg and MaxInflightMsgs are raft's (defaults 1 MiB, 256).
	MaxSizePerMsg   uint64
	MaxInflightMsgs int
	// FastFailover runs every group with raft's fast failover
	// (raft.SetFastFailover) and makes PeerUnreachable count a peer host
	// as failed at once: the groups it led here wake and campaign one
	// tick after the leader's lease instead of after HostTimeoutTicks
	// and a random election timeout.
	FastFailover bool

	// AppendSparesTicks is how long an append to a member spares it the
	// leader's plain heartbeats (those without a read context), in ticks:
	// the append resets the member's election timer and carries the
	// commit index, and its answer marks the member active for
	// CheckQuorum, so a heartbeat due within this many ticks of it does
	// nothing another message did not (not sending it is a message loss,
	// which raft tolerates). Groups written every few ticks, too busy to
	// quiesce, then heartbeat only in their quiet spells. Default
	// max(HeartbeatTick, ElectionTick/2-HeartbeatTick): a member of an
	// awake group still hears from its leader at least every half
	// election timeout (its last append, then a heartbeat at most
	// HeartbeatTick after the spared ones), when that is what
	// HeartbeatTick allows at all.
	AppendSparesTicks int
	// SeparateHeartbeats sends every group's heartbeats and their answers
	// as raft messages of their own, as hosts did before coalesced
	// heartbeats (see Heartbeat): such hosts drop a batch that carries
	// coalesced ones as malformed, so set it on every host while a
	// cluster still runs one of them. Hosts decode both forms either way.
	// Default false: a round's plain heartbeats to a host travel as one
	// item.
	SeparateHeartbeats bool
	// AnnounceCommitsAtOnce sends a leader's announcements of a new
	// commit index (appends without entries) as soon as raft makes them,
	// as etcd/raft's users do. Default false: a leader holds them until
	// its next message of the group to the member, at most until raft's
	// first heartbeat to it that a recent append does not spare
	// (AppendSparesTicks+HeartbeatTick ticks after the member's last
	// answer; see announce.go), sparing its members a turn per commit;
	// their applied index then trails the leader's by up to that long.
	AnnounceCommitsAtOnce bool

	// DisableQuiescence keeps every group ticking and heartbeating.
	DisableQuiescence bool
	// QuiesceAfterTicks is how many ticks in a row a leader must find its
	// group idle before quiescing it. Default 2*HeartbeatTick+1.
	QuiesceAfterTicks int
	// PingTicks is the period, in ticks, of the liveness ping (an empty
	// batch) a host sends each peer host, whatever else it sends: one
	// per host, not per group. Default HeartbeatTick.
	PingTicks int
	// HostTimeoutTicks is how long a peer host may stay silent (no
	// batch, ping or frame of any kind) before it counts as failed,
	// waking the quiesced groups it leads. Default 2*ElectionTick: a
	// busy host's frames and pings may run an election timeout late on
	// a loaded machine, and a false failure is costly (every quiesced
	// group the peer leads wakes, and again when it is heard, which
	// loads the hosts further), while a true one is still noticed
	// within two election timeouts, after which the woken followers
	// elect as usual.
	HostTimeoutTicks int

	// Seed seeds the election timeouts of all groups (zero: from the
	// clock), so that a simulation is repeatable.
	Seed int64
	// Logger receives host-level logs. Default: none.
	Logger *zap.Logger
	// RaftLogger is every group's raft.Logger. Default: a logger that
	// drops everything but panics.
	RaftLogger raft.Logger
}

func (c HostConfig) withDefaults() (HostConfig, error) {
	switch {
	case c.ID == 0:
		return c, fmt.Errorf("%w: ID must not be zero", ErrInvalidConfig)
	case c.Storage == nil || c.Transport == nil || c.App == nil:
		return c, fmt.Errorf("%w: Storage, Transport and App are required", ErrInvalidConfig)
	case c.Workers < 0:
		return c, fmt.Errorf("%w: Workers %d is negative", ErrInvalidConfig, c.Workers)
	case c.ApplyQueue < 0:
		return c, fmt.Errorf("%w: ApplyQueue %d is negative", ErrInvalidConfig, c.ApplyQueue)
	case c.ReadOnlyOption == raft.ReadOnlyLeaseBased && !c.CheckQuorum:
		return c, fmt.Errorf("%w: ReadOnlyLeaseBased requires CheckQuorum", ErrInvalidConfig)
	}
	setDefault(&c.MaxBatch, 64)
	if c.MinSaveInterval == 0 {
		c.MinSaveInterval = time.Millisecond
	}
	setDefault(&c.ElectionTick, 10)
	setDefault(&c.HeartbeatTick, 1)
	if c.ElectionTick <= c.HeartbeatTick {
		return c, fmt.Errorf("%w: ElectionTick must exceed HeartbeatTick", ErrInvalidConfig)
	}
	setDefault(&c.AppendSparesTicks, max(c.HeartbeatTick, c.ElectionTick/2-c.HeartbeatTick))
	setDefault(&c.QuiesceAfterTicks, 2*c.HeartbeatTick+1)
	setDefault(&c.PingTicks, c.HeartbeatTick)
	setDefault(&c.HostTimeoutTicks, 2*c.ElectionTick)
	setDefault(&c.MaxInflightMsgs, 256)
	if c.MaxSizePerMsg == 0 {
		c.MaxSizePerMsg = 1 << 20
	}
	if c.Seed == 0 {
		c.Seed = time.Now().UnixNano()
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	if c.RaftLogger == nil {
		c.RaftLogger = newQuietLogger()
	}
	return c, nil
}

func setDefault(v *int, d int) {
	if *v <= 0 {
		*v = d
	}
}

// GroupConfig describes a group to CreateGroup.
type GroupConfig struct {
	// ID names the group.
	ID GroupID
	// Members are the hosts of the group's initial voters, this host
	// among them. Used only when the group has no state in Storage yet
	// and Join is false: the replica bootstraps with them (every member
	// must be created with the same list). Otherwise the configuration
	// comes from Storage.
	Members []HostID
	// Join creates an empty replica that waits for the group's leader to
	// replicate to it: for a host added to an existing group by a
	// configuration change.
	Join bool
	// Applied is the last index the application applied before a restart
	// (raft.Config.Applied).
	Applied uint64
}

func (h *Host) raftConfig(st raft.Storage, applied uint64) *raft.Config {
	c := &h.cfg
	return &raft.Config{
		ID:              c.ID,
		ElectionTick:    c.ElectionTick,
		HeartbeatTick:   c.HeartbeatTick,
		Storage:         st,
		Applied:         applied,
		MaxSizePerMsg:   c.MaxSizePerMsg,
		MaxInflightMsgs: c.MaxInflightMsgs,
		CheckQuorum:     c.CheckQuorum,
		PreVote:         c.PreVote,
		ReadOnlyOption:  c.ReadOnlyOption,
		Logger:          c.RaftLogger,

		AsyncStorageWrites: c.AsyncSaves,
		// A leader that a configuration change removes steps down, so
		// that the members elect one of their own: raft drops every
		// proposal of a leader outside its configuration, and the
		// members, hearing its heartbeats, would never campaign (the
		// multi-group simulation's membership changes got stuck so).
		StepDownOnRemoval: true,
	}
}
