/*
Package multiraft hosts many Raft groups in one process, on raft.RawNode:
the shape every system that outgrows one group builds (CockroachDB, TiKV,
dragonboat users). A Host runs one replica of each of its groups; inside a
group, a replica's raft ID is its host's ID, so a message's To names the
host it goes to. The root raft package does not import this one.

	st := multiraft.NewMemStorage() // or a shared WAL
	h, err := multiraft.New(multiraft.HostConfig{
		ID: 1, Peers: []uint64{2, 3},
		Storage: st, Transport: nt, App: app,
		Workers: 4, TickInterval: 100 * time.Millisecond,
		CheckQuorum: true, PreVote: true,
	})
	nt.Serve(h) // a NetTransport hands what arrives to h.Receive
	_ = h.CreateGroup(multiraft.GroupConfig{ID: 7, Members: []uint64{1, 2, 3}})
	_ = h.Propose(7, data) // applied through app.Apply(7, entries)

# Scheduler

No goroutine runs per group. Work for a group (a message, a proposal, a
read, a tick, a liveness change) goes to its inbox and puts the group on a
FIFO run queue, once; HostConfig.Workers goroutines run rounds of up to
MaxBatch groups: step each inbox into raft, take the Ready, save the
Readys of all the round's groups with one Storage.SaveBatch, then send
their messages (one Batch per peer host for the whole round), apply
committed entries and Advance. A group is held by at most one worker;
work that arrives meanwhile sends it to the tail of the queue when the
worker is done, so a busy group cannot starve the others.

Ticks are the exception: a tick goes to every awake group's inbox, but
it schedules only the groups whose tick is due. A follower of a leader on
a live host holds up to half an election timeout of ticks, and a leader
(unless its reads are lease-based) up to HeartbeatTick; the leader's
next heartbeat or append, or the group's next proposal, steps them (a
follower's before what arrived, so they age its election timer only
from the previous message). Late ticks delay elections and quorum checks
a little and never shorten the time a follower honours a lease; with
hundreds of busy groups, they keep the rounds from filling with groups
that only step a tick (see Host.Tick).

Rounds fill rather than trickle. One round gathers at a time: while
another round's save (its fsync) is under way, it keeps taking the groups
that become ready, since waiting for the disk costs it nothing, and an
idle worker does not start a second round of one group meanwhile. Saves
are also paced (HostConfig.MinSaveInterval, 1ms by default, only after
rounds of several groups): under load every save carries many groups,
so fsyncs, frames and CPU per write fall as groups are added instead of
growing. A leader's appends and heartbeats leave as soon as its Ready is
taken, before the save (the Raft thesis, 10.2.1: raft counts the leader's
own copy of new entries only when Advance steps its acknowledgement, after
the save); every other message, acknowledgements and votes among them,
waits for the save that makes what it promises durable. Committed
entries that were durable here before the round (all but those the round
appends) are applied while the save runs, on a goroutine of the round's:
the fsync cannot change them; entries the round appends are applied only
after it. With HostConfig.ApplyQueue, neither waits: the round hands
them (and its answered reads) to one apply goroutine of the host, in
round order, and goes on; raft's own state (configuration changes,
Advance) is updated on the worker as before, and a snapshot is restored
only once the applies handed over before it are done. A slow apply then
delays its own group's answers, not the rounds of every group (see
applier.go). A round sends no message another message of the
same Ready supersedes (an empty append followed by another append, an
acknowledgement followed by a larger one, all but the last heartbeat),
and a leader sends no heartbeat to a member it sent an append within the
last HostConfig.AppendSparesTicks (by default, so that a member of an
awake group hears from its leader at least every half election timeout),
and a follower does not answer raft's announcement of a new commit index
when the answer would repeat its last acknowledgement (a lost earlier
acknowledgement is recovered at the next heartbeat's answer, whose
append does not move the commit index and is answered): each is a
message loss raft tolerates. A leader holds raft's announcements of a new
commit index (appends without entries) until its next message of the
group to the member, which carries it in the same batch or supersedes
it, at most until raft's first heartbeat to the member that a recent
append does not spare, unless HostConfig.AnnounceCommitsAtOnce: a
member's apply then trails the leader's by up to AppendSparesTicks +
HeartbeatTick ticks, and a member runs no turn for announcements at all
(see announce.go); a member that forwarded proposals gets the commit
index that covers them at once, since it answers their clients. A
read a member serves waits for the commit index raft's answer names,
and that answer carries the held announcement along.

With Workers 0 the caller drives the same rounds with RunPending and the
clock with Tick: the deterministic mode of tests and the simulation.

# Saving behind the rounds

With HostConfig.AsyncSaves the groups run raft's asynchronous storage
writes (raft.Config.AsyncStorageWrites) and a round no longer holds its
groups through the save. It steps each group, takes its Ready, hands the
Ready's write (a MsgStorageAppend) to the host's saver goroutine, sends the
Ready's messages, applies its committed entries (a MsgStorageApply: raft
hands out only entries durable here) and releases the group. The saver
takes everything handed over since its last save, writes it with one
Storage.SaveBatch, in the order received (so each group's writes stay in
raft's order), and only then delivers each write's Responses: the
acknowledgements and votes it answers for go to their hosts (none leaves
before its fsync, TestAsyncSavesAckAfterDurable), raft's notes of
durability back to their groups, stepped by the saver itself into a group
no round holds (scheduled only if that leaves work), else through the
group's next round. Meanwhile the groups whose writes are being synced
run again: a proposal or an acknowledgement arriving during an fsync is
stepped in the next round (paced by MinSaveInterval), not after the round
that held its group for the fsync, and a leader's next appends leave at
once. A group does not quiesce while a write of its own is with the
saver. The simulation runs it with crashes that catch writes the saver
has not made (TestSimMultiGroupAsyncSaves).

# Storage

Storage is the per-host store of all groups: Open returns a group's
raft.Storage (what raft reads) and SaveBatch persists a batch of
GroupUpdates (HardState, entries, snapshot per group) with one durable
write, so that a write-ahead log shared by all groups syncs once per
batch of groups. Host.Compact hands the store (Storage.Compact) a
snapshot the application took at an applied index, with the
configuration raft applied, and lets it drop the log below; raft sends it
to members that lag behind, and a restarting group restores it through
Application.Restore. raft refuses a snapshot whose configuration does not
name the member it is sent to, so once a configuration change adds a
member, the application should compact at an index from that change on
(kvservice's sharded server does right after each change): until then a
member added behind the leader's first index cannot catch up (the
simulation's membership changes do the same, sim_members_test.go). A
leader that a change removes steps down (raft's StepDownOnRemoval), so
that the members elect one of their own. MemStorage implements Storage in
memory for tests.
Snapshots travel inline in a batch, so they must fit in a frame, unless
the transport streams them (NetConfig.Snapshots, MemNetwork.
SetSnapshotStreams; see SnapshotStreams): then each goes on a connection
of its own, the application's data read from a SnapshotSource and written
to a SnapshotSink, and raft hears the outcome through Host.ReportSnapshot.

An Application that also implements RoundApplication receives a round's
committed entries, of all its groups, in one ApplyRound call instead of
one Apply per group, so that it can write them to its own store in one
batch too (kvservice's sharded server does: one Pebble commit per round).

# Network

Batches travel in frames of AppendBatch's encoding: the sender, then per
item the group, a kind (a raft message, a quiescing heartbeat, a wake-up)
and the message. A round's plain heartbeats to one host (no read context)
travel coalesced, as one item listing (group, term, commit) per group, and
so do their answers (group, term): with hundreds of awake groups, a
leader host sends each peer host one item of heartbeats per round instead
of one message per group, and gets one item of answers back. The receiver
expands them into the very raft messages the sender's groups made and
steps each into its group, so raft's semantics are untouched (election
timers, commit indexes, CheckQuorum's marks, leases and quiescence read
the same messages); only the encoding changes. Hosts of versions before it
refuse such batches: HostConfig.SeparateHeartbeats sends heartbeats as
messages of their own while a cluster still runs one. NetTransport keeps one connection to each peer host, a
batch stream of package transport (its handshake, frame limit and TLS),
and merges everything queued for a host into one frame per write.
MemNetwork connects hosts of one process.

# Quiescence

A group with nothing to do stops ticking on every member, so that idle
groups cost neither CPU nor messages; only hosts ping each other, once per
tick for all groups.

Entering. On a tick, a leader whose group was idle for QuiesceAfterTicks
checks that everything is committed, applied locally and acknowledged by
every member (every Match equals the commit index), that no proposal,
read, configuration change or leadership transfer is pending, and that
every member's host is alive. It then sends each member a quiescing
heartbeat (a MsgHeartbeat carrying the commit index, marked quiesce in the
batch) and stops ticking the group. With CheckQuorum it also waits until
every member answered since raft's last quorum check, and quiesces only
within the first third of an election timeout after that check, so that
the check that waking runs (see leases) finds the members active and the
next one comes most of an election timeout later; otherwise a woken
leader could step down before its members' answers arrive. A follower
steps the heartbeat like any other (its election timer restarts, its commit index reaches the
leader's) and then quiesces only if its log ends exactly at that commit
index in the leader's term, all of it applied, with nothing pending;
otherwise it stays awake and asks the leader to wake up. Its answer to the
quiescing heartbeat is not sent (the leader needs nothing from it), but an
answer to a read round's heartbeat stepped in the same round is: only
reads asked on the leader's own host hold it awake, so it may quiesce
while a read forwarded by a follower is still being confirmed, and it
steps the answers that arrive while quiesced, serving the read.

Waking. A proposal, a read, a configuration change, a campaign or a
transfer wakes the group on the host where it is asked; any message but
heartbeat answers, quiescing heartbeats and a follower's leader's
heartbeats of its term wakes the receiving replica, so the leader's first
append wakes its followers and a candidate's vote request wakes everyone
it reaches. A woken follower asks its leader to wake. A quiesced follower
answers its leader's heartbeats (and their read and lease tokens) without
waking: a heartbeat sent before the leader's quiescing one may arrive
after it, and waking at it would wake the leader through the follower at
every quiescence (group.keepsQuiet; simulation seed 137). Failures: each host tracks the liveness of its peer hosts once for
all groups (a peer silent for HostTimeoutTicks, two election timeouts by
default, is down: any batch or ping counts, and pings leave before a tick
schedules the groups, so a busy host is not taken for a failed one); when
a host goes down, every quiesced replica whose leader lives there wakes,
ticks, and elects a new leader after its election timeout; when a host
comes back, quiesced leaders with a member there wake to catch it up.
With HostConfig.FastFailover, a host also counts a peer as failed as soon
as its transport reports a broken stream or a failed dial
(PeerUnreachable; NetTransport does), and every replica led from there
campaigns one tick after the leader's lease (raft.SetFastFailover), awake
or woken: a crashed host's groups elect new leaders about an election
timeout after its last message instead of HostTimeoutTicks plus a random
election timeout later.

Safety does not depend on quiescence: it only decides when raft's clock
advances, and a raft node whose clock stops is a slow node, which Raft
tolerates. The three mechanisms that read that clock:

  - Elections. A quiesced follower's election timer is stopped, so it
    never campaigns on its own; every election still follows raft's
    rules (terms, votes, log comparison, PreVote). Liveness comes from
    the wake-ups above: a leader's failure is noticed per host, and any
    election message wakes whoever receives it.
  - CheckQuorum. A quiesced leader does not check its quorum; it
    commits nothing while quiesced, and it cannot commit anything after
    waking without a quorum. Waking ages a leader's clock by ElectionTick
    ticks (see leases), which runs a check on the members' marks as they
    were at quiescence; since a leader quiesces only with every member
    marked active and early in a check period (see Entering), that check
    passes and the next comes most of an election timeout after the
    wake-up, when the members' answers have arrived
    (TestWokenLeaderKeepsLeadershipWhileAnswersArrive). A leader cut off
    while quiesced steps down within about two election timeouts of
    waking.
  - Lease reads (ReadOnlyLeaseBased). raft reckons a leader's lease in
    its own ticks since a quorum acknowledged a heartbeat. A quiesced
    leader's clock is frozen, so its lease would look fresh forever,
    while its followers, woken by the failure of its host (or cut off
    from it), elect another leader after an election timeout. So a
    quiesced leader never serves a lease read: every read wakes the
    group first, and waking a leader ages its clock by ElectionTick
    ticks before anything else is stepped, which ends the lease (it
    lasts ElectionTick-2 ticks). The read then goes through a heartbeat
    round, and a lease starts again only from heartbeats sent after the
    wake-up. The ticks also send heartbeats (only the last one per peer
    leaves: dropping the others is a message loss) and run CheckQuorum.
    Followers need nothing: a quiesced follower's stopped timer keeps
    refusing votes (honouring the lease) longer, never shorter, also
    when it answered heartbeats of an awake leader while quiesced (the
    heartbeat reset the timer, which resumes from there once woken). The test
    TestQuiescedLeaderServesNoLeaseRead and simulation seed 22 show the
    stale read that happens without the ageing.

# Group lifecycle

CreateGroup starts a replica: a new group bootstraps with its members
(every member must be created with the same list), a group with state in
Storage restarts from it, and a Join replica starts empty and waits for
its leader (for a host added by ProposeConfChange). RemoveGroup stops the
replica and deletes its storage; messages for unknown groups are dropped.
The application calls them on every member.

# Testing

The package's simulation (sim_test.go) runs several groups over the same
simulated hosts in manual mode, quiescence on, from one seed: partitions,
drops, duplicates, delays, crashes and restarts; it checks one leader per
term per group, state machine safety across restarts, log matching,
linearizability of a register per group (writes through the log, reads
through ReadIndex, safe or lease-based), and that every group commits and
quiesces again after healing. TestSimMultiGroupAsyncSaves runs it with
HostConfig.AsyncSaves, holding each host's saves back at random so that
crashes find them unsaved after the leaders' appends left.
*/
package multiraft
