/*
Package raft implements the Raft consensus protocol as a library: the
protocol's state machine, with no I/O of its own. The application stores the
log, carries messages between nodes, keeps time and applies what raft commits;
raft tells it, in batches called Ready, what to store, what to send and what to
apply. The wire types live in package raftpb.

Raft keeps a log replicated on a cluster of nodes, and a state machine (the
application's) that every node builds by applying the log in order. A leader
appends proposals to its log and replicates them; an entry stored by a quorum is
committed and may be applied. The protocol is described in "In Search of an
Understandable Consensus Algorithm" (https://raft.github.io/raft.pdf) and, with
everything this package implements, in Diego Ongaro's thesis "Consensus:
Bridging Theory and Practice" (https://github.com/ongardie/dissertation).

raftkit is a drop-in replacement for go.etcd.io/raft/v3 (v3.6): the same API,
the same messages, the same Ready contents for the same inputs.

# Two ways to drive a node

RawNode is the state machine itself, driven by the caller from one goroutine:
every method runs to completion on the caller's stack, nothing happens between
calls, and nothing is safe for concurrent use. It suits applications that run
many raft groups on a few goroutines, and tests.

Node wraps a RawNode in a goroutine. Its methods are safe for concurrent use
and hand their requests to the goroutine over channels, except that a peer's
message (and an Advance) is stepped on the caller's goroutine while the node
goroutine is idle, to the same effect; work comes out of the Ready channel.
Both offer the same operations: Tick, Campaign, Propose, ProposeConfChange,
Step, ApplyConfChange, ReadIndex, TransferLeader(ship), ForgetLeader, Status,
ReportUnreachable, ReportSnapshot.

# Starting a node

A node reads its durable state (HardState, log, latest snapshot and its
ConfState) from a Storage, which the application implements over its own disk
format (MemoryStorage is an in-memory implementation). Raft only reads from
Storage; the application writes to it while handling Readys.

A brand-new cluster needs an initial configuration. The recommended way is to
write it into the storage before starting: a snapshot at a non-zero index
(index 1, term 1, as here) whose ConfState lists the voters.

	storage := raft.NewMemoryStorage()
	_ = storage.ApplySnapshot(raftpb.Snapshot{Metadata: raftpb.SnapshotMetadata{
		Index: 1, Term: 1,
		ConfState: raftpb.ConfState{Voters: []uint64{1, 2, 3}},
	}})
	rn, err := raft.NewRawNode(&raft.Config{
		ID:              1,
		ElectionTick:    10,
		HeartbeatTick:   1,
		Storage:         storage,
		MaxSizePerMsg:   1 << 20,
		MaxInflightMsgs: 256,
	})

The older way is StartNode (for Node) or RawNode.Bootstrap, which begin the
log with one configuration-change entry per peer. A node that restarts reads
everything from its storage: RestartNode, or NewRawNode with the Storage
refilled from disk, and Config.Applied set to the last index the state machine
had applied.

Node IDs are non-zero and name one node for all time: an ID must not be reused
by a new node after the old one was removed (so addresses make poor IDs).

# The Ready contract

Everything raft wants done comes out as a Ready: RawNode.Ready (check
RawNode.HasReady first) or a receive from Node.Ready. A Ready is handled in
this order:

 1. Persist. Write HardState (if not empty), append Entries and save Snapshot
    (if not empty) to stable storage, and make them visible through Storage.
    Appending an entry at index i discards any stored entry at i or beyond.
    Ready.MustSync says whether this write must be durable (fsync) before
    going on, or may stay buffered (only the commit index moved).
 2. Send. Send Messages to their To nodes, but only once step 1 is done: a
    vote or an append acknowledgement promises that something is on disk.
    For every MsgSnap, report the outcome of the transfer with
    ReportSnapshot. (With AsyncStorageWrites, below, the messages that do not
    depend on the disk write go out at once, which lets a leader write its
    log in parallel with its followers, thesis §10.2.1.)
 3. Apply. Apply Snapshot (if any) and then CommittedEntries to the state
    machine, in order. A committed EntryConfChange or EntryConfChangeV2 is
    decoded and passed to ApplyConfChange; the application may instead
    reject it, deterministically (from the state machine alone, the same way
    on every node), by not calling ApplyConfChange.
 4. Advance. Call Advance. Only then does the next Ready get built from what
    happened meanwhile. Advance may come before step 3 has finished (a large
    snapshot may take long to apply), but committed entries of the next Ready
    must still be applied after those of this one.

The application owns what a Ready hands it: raft does not modify the Ready's
entries, states and snapshot afterwards, so they may be kept, but they must
not be modified either (entries may be shared with the Storage and with other
messages). The one exception is opt-in: with RawNode.LendMessages (and without
AsyncStorageWrites) raft reuses the array behind Messages once the application
takes the next Ready, so that a busy node does not allocate its outbox again
for every Ready. Such an application sends the messages (or copies them, as a
queueing transport does) before that; the messages' own entries and contexts
may be kept. RawNode.LendReadStates does the same for the array behind
ReadStates, for an application that serves each Ready's reads before it takes
the next one.

A Node-based loop looks like this:

	for {
		select {
		case <-ticker.C:
			n.Tick()
		case rd := <-n.Ready():
			persist(rd.HardState, rd.Entries, rd.Snapshot, rd.MustSync)
			send(rd.Messages)
			if !raft.IsEmptySnap(rd.Snapshot) {
				restoreStateMachine(rd.Snapshot)
			}
			for _, e := range rd.CommittedEntries {
				switch e.Type {
				case raftpb.EntryNormal:
					applyCommand(e.Data)
				case raftpb.EntryConfChange:
					var cc raftpb.ConfChange
					_ = cc.Unmarshal(e.Data)
					n.ApplyConfChange(cc)
				case raftpb.EntryConfChangeV2:
					var cc raftpb.ConfChangeV2
					_ = cc.Unmarshal(e.Data)
					n.ApplyConfChange(cc)
				}
			}
			n.Advance()
		case m := <-fromNetwork:
			_ = n.Step(ctx, m)
		case <-done:
			n.Stop()
			return
		}
	}

With a RawNode the loop is the same, except that the application calls Tick,
Step and Propose itself, and asks for work with HasReady and Ready. The
examples of this package run such loops.

Time is measured in ticks: call Tick at a fixed interval. Config.HeartbeatTick
and Config.ElectionTick are counted in ticks.

# Proposing

Propose hands data to the leader (a follower forwards it). If it commits, the
data comes back as an EntryNormal in CommittedEntries, on every node. A
proposal can be lost on the way (a leader change, a dropped message), so the
application must be ready to propose again after a timeout; it also recognizes
its own entries in the committed log by something it put in the data. Propose
returns ErrProposalDropped when the node refuses the proposal outright.

Membership changes are proposed with ProposeConfChange, using a
raftpb.ConfChange (one change at a time) or a raftpb.ConfChangeV2 (any set of
changes, through joint consensus, thesis §4.3). A change takes effect on a node
when the node applies it (ApplyConfChange), not when it is appended: the entry
is committed under the old configuration. A leader accepts a new change only
once every earlier change in its log has been applied, so that no two
configurations can disagree on a quorum. Two-node clusters are fragile with
this scheme (removing one of them needs both), so three or more nodes are
recommended.

# Configuration after a restart (a difference from etcd/raft)

Applying configurations is safe only while every node is at most one
configuration behind the latest committed one (etcd-io/etcd#7625). A node
restarts from its durable commit index; if its storage kept entries but lost
the commit index written with them (a torn write, a commit-only HardState
that was never synced), an etcd/raft v3.6 node can restart several
configurations behind and, given one lagging vote, lead a quorum of a
configuration the group has left: two entries committed at one index. raftkit
closes that: since a leader appends a change only after applying the previous
one, every configuration change in a log except the last is committed, and
NewRawNode raises the commit index to the second-to-last change found above
the durable one. The first Ready then reports the raised HardState and hands
out the entries up to it. Storage that keeps each write's entries and
HardState together (wal does) never triggers it, so behaviour is otherwise
identical to etcd/raft's; with Config.DisableConfChangeValidation the raise
is off, as the rule it relies on is then the application's.

# Vote requests of an older term (a difference from etcd/raft)

A node answers a MsgVote of a term older than its own with a rejection that
carries its term, as the Raft paper says; etcd/raft ignores it. Ignoring it can
stall a group for good: a voter whose log lags behind a membership change may
raise its term campaigning among the members of its old configuration, never
write to the new ones, and ignore their requests while they need its vote.
SAFETY.md (item 8) has the case the simulator found.

# Snapshots during a configuration change (a difference from etcd/raft)

A follower that receives a snapshot while the application still holds a
committed configuration change it has not applied (an apply thread, or a Node
stepping messages during a Ready) defers the snapshot and answers as for one it
ignores; the leader sends it again. etcd/raft installs it, and applying the
held change on the snapshot's configuration then panics (SAFETY.md, item 9).

# Asynchronous storage writes

With Config.AsyncStorageWrites, a Ready is handled differently: the
application does not act on HardState, Entries, Snapshot or CommittedEntries,
and never calls Advance. Instead, Messages contains, besides the messages for
other nodes, up to two messages addressed to local "threads":

  - a MsgStorageAppend to LocalAppendThread, carrying Entries, the HardState
    (in its Term, Vote and Commit fields, all zero when unchanged) and
    Snapshot;
  - a MsgStorageApply to LocalApplyThread, carrying the entries to apply.

Messages for other nodes may be sent at once. The work for each thread is
done in the order the messages were produced (messages for different threads
need not be ordered between them); once a piece of work is done, its message's
Responses are delivered: stepped into the local node, or sent to other nodes,
according to their To field. Responses include the messages that had to wait
for durability (votes, append acknowledgements) and an acknowledgement back to
the node (MsgStorageAppendResp, MsgStorageApplyResp), which replaces Advance.

This lets disk writes, state machine application and raft's own work overlap,
at the cost of more moving parts; the thesis's leader optimization of step 2
above comes for free.

# Messages

Messages are raftpb.Message values; their MessageType says what they are. Some
never leave the node: they are how the application (and raft itself) asks for
local work, and Step refuses them from the network.

  - MsgHup: start an election. Raft produces it itself when a follower or
    candidate's election timeout passes without hearing from a leader;
    Campaign steps one.
  - MsgBeat: tells a leader to send heartbeats; produced on heartbeat ticks.
  - MsgProp: a proposal, carrying the entries to append. A leader appends them
    and replicates them; a follower forwards the proposal to its leader (or
    drops it with DisableProposalForwarding); a candidate drops it.
  - MsgApp and MsgAppResp: replication. A leader sends entries that follow
    (Index, LogTerm) in its log, with its commit index. The follower appends
    them if its log has that entry (the Log Matching check) and acknowledges
    its new last index, or rejects and gives a hint of where its log diverges,
    so the leader can retry further back.
  - MsgVote and MsgVoteResp: a candidate asks for votes, presenting its last
    entry; a node grants at most one vote per term, and only to a candidate
    whose log is at least as up to date as its own.
  - MsgPreVote and MsgPreVoteResp: with Config.PreVote, a would-be candidate
    first asks whether it could win, without raising its term, so that a node
    rejoining after a partition does not disrupt a working leader (thesis
    §9.6).
  - MsgSnap: a leader sends a snapshot to a follower whose missing entries are
    compacted away. The application transports it and calls ReportSnapshot.
  - MsgHeartbeat and MsgHeartbeatResp: a leader's periodic sign of life, with
    the commit index the follower can safely use; responses tell the leader it
    still reaches a quorum and carry read-only request contexts.
  - MsgUnreachable: the application reports that a message could not be
    delivered (ReportUnreachable); the leader goes back to probing that
    follower. With RawNode.SetFastFailover, a follower told that its leader is
    unreachable campaigns one tick after the leader's lease instead of at
    a random later time (a raftkit addition; etcd/raft's followers ignore
    the report).
  - MsgSnapStatus: the application reports a snapshot's fate
    (ReportSnapshot).
  - MsgCheckQuorum: with Config.CheckQuorum, a leader checks on election
    timeouts that a quorum has been active, and steps down otherwise.
  - MsgTransferLeader and MsgTimeoutNow: leadership transfer (thesis §3.10).
    The leader brings the transferee up to date and sends it MsgTimeoutNow,
    which makes it campaign at once; proposals are dropped meanwhile.
  - MsgReadIndex and MsgReadIndexResp: linearizable reads (thesis §6.4). The
    leader records its commit index and confirms its leadership with a round
    of heartbeats (or, with ReadOnlyLeaseBased, trusts its lease); the
    answer comes out as a ReadState in a Ready.
  - MsgForgetLeader: makes a follower forget its leader (ForgetLeader).
  - MsgStorageAppend, MsgStorageAppendResp, MsgStorageApply,
    MsgStorageApplyResp: the work for the local storage threads and its
    acknowledgements, with AsyncStorageWrites.

Every message from another node carries its sender's term. Raft answers a
message from a higher term by stepping down to follower in that term (with
exceptions for pre-votes and for leaders within their lease), and ignores or
rejects messages from lower terms, so a stale leader learns of the newer term.

# Observing

Status and BasicStatus report the node's state; WithProgress walks a leader's
view of its followers without allocating. The Describe functions render
Readys, messages and entries as text, in the format used by the rafttest
scenario files.
*/
package raft
