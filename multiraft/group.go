package multiraft

import (
	"slices"
	"sync"
	"sync/atomic"

	"github.com/raftkit/raft"
	"github.com/raftkit/raft/raftpb"
	"github.com/raftkit/raft/tracker"
)

// inbox is the work waiting for a group: what callers, the network and
// the clock handed it since its last round.
type inbox struct {
	items    []Item
	props    [][]byte
	confs    []raftpb.ConfChangeI
	reads    [][]byte
	ticks    int
	wake     bool   // a liveness change asks the worker to reconsider
	campaign bool   // Campaign was called
	transfer HostID // TransferLeader target, or 0
	removed  bool   // RemoveGroup was called
	compacts []compactReq
	// hostsDown and hostsUp are peer hosts that failed or came back.
	hostsDown []HostID
	hostsUp   []HostID
	// snapReports are the outcomes of streamed snapshots (ReportSnapshot).
	snapReports []snapReport
	// local are the Responses the saver delivered to this replica
	// (raft's notes of durability, a leader's acknowledgement of its own
	// entries), and saved counts the saves they came from
	// (HostConfig.AsyncSaves).
	local []raftpb.Message
	saved int
}

// wakes reports whether the inbox of g, quiesced, holds work that ends
// quiescence: any request of the application, and any message but the
// answers to the leader's quiescing heartbeat, further quiescing
// heartbeats and the heartbeats that keep a follower quiet (keepsQuiet).
func (in *inbox) wakes(g *group) bool {
	if len(in.props) > 0 || len(in.confs) > 0 || len(in.reads) > 0 || in.campaign || in.transfer != 0 {
		return true
	}
	for i := range in.items {
		it := &in.items[i]
		switch {
		case it.Kind == KindWake:
			return true
		case it.Kind == KindRaft && it.Msg.Type != raftpb.MsgHeartbeatResp && !g.keepsQuiet(&it.Msg):
			return true
		}
	}
	return false
}

// keepsQuiet says whether m leaves g, a quiesced follower, quiesced: a
// heartbeat from the leader it follows, in its term. Such a heartbeat was
// either sent before the leader's quiescing heartbeat and overtaken by it
// (batches sent at different times, reordered), or comes from a leader
// awake with nothing for this member to store (an append would wake it).
// raft steps it and answers it, with its read or lease token, so an awake
// leader still counts the member active and confirms its reads and its
// lease, and the member does not ask the leader to wake: a late heartbeat
// that woke the member, and through it the leader, could recur at every
// quiescence and end none (the multi-group simulation's membership seed
// 137). The member's election timer, reset by the heartbeat, stays frozen
// while it is quiesced, which only makes it honour the leader's lease
// longer.
func (g *group) keepsQuiet(m *raftpb.Message) bool {
	return m.Type == raftpb.MsgHeartbeat && !g.leading && g.lead != 0 && m.From == g.lead &&
		m.Term == g.rn.BasicStatus().Term
}

// busy reports whether the inbox asks for anything besides time passing.
func (in *inbox) busy() bool {
	return len(in.props) > 0 || len(in.confs) > 0 || len(in.reads) > 0 || in.campaign || in.transfer != 0
}

// group is one replica hosted by a Host.
type group struct {
	id GroupID
	st raft.Storage

	// sched is guarded by the scheduler's mutex.
	sched schedState
	// awakeIdx is g's position in Host.awake, -1 when quiesced; guarded
	// by Host.mu.
	awakeIdx int

	mu     sync.Mutex // guards in and status
	in     inbox
	spare  inbox // the previous inbox, reused to save allocations
	status GroupStatus
	// leader is status.Lead, readable without the lock (Host.Leader).
	leader atomic.Uint64
	// role is the replica's role as of its last Ready (tickRole),
	// readable without the lock: Host.Tick holds back the ticks of some
	// roles (tickDeferLimitLocked).
	role atomic.Uint32

	// The rest is owned by the worker holding the group (scheduler
	// invariant 2).
	rn       *raft.RawNode
	quiesced bool
	// leading is whether the replica led its group as of its last Ready
	// (raft reports every change of role in Ready.SoftState).
	leading bool
	// self is the host's ID, the replica's raft ID.
	self HostID
	// sinceCheck counts the leader's ticks since raft's last quorum
	// check, as observed by tick (maybeQuiesceLeader).
	sinceCheck int
	// acked records, per member, the host tick of the last append answer
	// of the leader's term received from it (ackedRecently).
	acked []peerTick
	// idleTicks counts the ticks in a row on which the group had nothing
	// to do; a leader quiesces after HostConfig.QuiesceAfterTicks.
	idleTicks int
	// readTicks counts down while ReadIndex requests may be outstanding
	// (readsOut of them unanswered; raft may drop some silently, hence the
	// countdown); the group does not quiesce before it reaches zero.
	readTicks int
	readsOut  int
	// quiesceReq is the quiescing heartbeat received in this round, if
	// any; the follower decides at the end of the round.
	quiesceReq *raftpb.Message
	// gone is set once the group was removed; dropped is the same for the
	// saver (saver invariant 3).
	gone    bool
	dropped atomic.Bool
	// unsaved counts the writes handed to the saver whose Responses
	// this replica has not stepped yet (HostConfig.AsyncSaves): until it
	// is zero the replica's storage lags its raft log, and the group
	// does not quiesce. savedTerm and savedVote are the term and vote of
	// the last HardState handed to the saver (a change needs a sync).
	unsaved   int
	savedTerm uint64
	savedVote uint64
	members   []HostID
	lead      HostID
	// confIndex is the index of the last configuration change (or
	// snapshot) applied: compaction below it would record a wrong
	// configuration.
	confIndex uint64
	// commit is the commit index of the replica's last Ready with a
	// HardState, and commitMoved whether the round's Ready raised it
	// (repeatsAck).
	commit      uint64
	commitMoved bool
	// lastAck is the last acknowledgement of appends this replica sent
	// (repeatsAck).
	lastAck sentAck
	// held is the leader's commit announcements not sent yet, at most
	// one per member, all of the current term (announce.go).
	held []raftpb.Message
	// owed records, per member that forwarded proposals to this leader,
	// the last index of the entries they became: the member answers its
	// clients once it applied them, so the commit index that covers them
	// goes to it at once, not held (announce.go). forwarding lists the
	// members whose proposals the round stepped, whose entries the
	// round's Ready carries.
	owed       []peerIndex
	forwarding []HostID
}

// sentAck identifies an acknowledgement of appends: to whom, in which
// term, up to which index.
type sentAck struct {
	to    HostID
	term  uint64
	index uint64
}

// noteReady records what a Ready just taken says of the replica's role
// and commit index.
func (g *group) noteReady(rd *raft.Ready) {
	if rd.SoftState != nil {
		leading := rd.SoftState.RaftState == raft.StateLeader
		if leading && !g.leading {
			g.sinceCheck = 0 // raft's check clock starts with the term
			g.acked = g.acked[:0]
		}
		if !leading {
			g.dropHeld() // an older term's: members refuse them
		}
		g.leading = leading
		g.noteRole(rd.SoftState)
	}
	g.noteCommit(rd)
	g.noteForwarded(rd)
}

// noteCommit records the commit index of a Ready's HardState, if it has
// one, and whether it moved.
func (g *group) noteCommit(rd *raft.Ready) {
	g.commitMoved = false
	if raft.IsEmptyHardState(rd.HardState) {
		return
	}
	g.commitMoved = rd.HardState.Commit > g.commit
	g.commit = rd.HardState.Commit
}

// repeatsAck says whether m, a message this replica is about to send,
// acknowledges exactly what its last acknowledgement did (same leader,
// term and index) in a round whose only news was a higher commit index:
// the answer to raft's announcement of a new commit index (an append
// without entries), which tells the leader nothing it did not hear. Not
// sending it saves the leader a step of its group per follower and write
// (with many lightly loaded groups, about a fifth of a write's group
// steps). It is a message loss, which raft tolerates; should the earlier
// acknowledgement have been lost, the leader learns the follower's log at
// its next heartbeat answer: raft then sends an append again, carrying a
// commit index the follower already has, and that append's answer goes
// out. Otherwise m becomes the last acknowledgement sent.
func (g *group) repeatsAck(m *raftpb.Message) bool {
	if m.Type != raftpb.MsgAppResp || m.Reject {
		return false
	}
	a := sentAck{to: m.To, term: m.Term, index: m.Index}
	if g.commitMoved && a == g.lastAck {
		return true
	}
	g.lastAck = a
	return false
}

// tickRole is what Host.Tick needs to know of a replica's role.
type tickRole = uint32

const (
	roleOther     tickRole = iota // candidate, or follower of no known leader
	roleFollowing                 // follower of a known leader
	roleLeading
)

// noteRole records the replica's role from a Ready's soft state.
func (g *group) noteRole(ss *raft.SoftState) {
	r := roleOther
	switch {
	case ss.RaftState == raft.StateLeader:
		r = roleLeading
	case ss.RaftState == raft.StateFollower && ss.Lead != raft.None:
		r = roleFollowing
	}
	g.role.Store(r)
}

func newGroup(id GroupID, rn *raft.RawNode, st raft.Storage) *group {
	g := &group{id: id, st: st, rn: rn, awakeIdx: -1}
	g.refreshMembers()
	return g
}

// push applies f to the inbox under the group's lock.
func (g *group) push(f func(in *inbox)) {
	g.mu.Lock()
	f(&g.in)
	g.mu.Unlock()
}

// take swaps the inbox out for an empty one (the worker's previous inbox,
// cleared, so that its slices are reused).
func (g *group) take() *inbox {
	g.mu.Lock()
	defer g.mu.Unlock()
	clearInbox(&g.spare)
	g.in, g.spare = g.spare, g.in
	return &g.spare
}

func clearInbox(in *inbox) {
	clear(in.items)
	clear(in.props)
	clear(in.confs)
	clear(in.reads)
	clear(in.compacts)
	clear(in.local)
	*in = inbox{items: in.items[:0], props: in.props[:0], confs: in.confs[:0], reads: in.reads[:0], compacts: in.compacts[:0],
		hostsDown: in.hostsDown[:0], hostsUp: in.hostsUp[:0], snapReports: in.snapReports[:0], local: in.local[:0]}
}

// tick steps n ticks into raft. For a leader it keeps sinceCheck: a
// quorum check clears every member's mark of activity, so a tick after
// which no member is marked active, when one was before, ran a check.
// (Members' answers are stepped in other rounds' items, never between
// these ticks.)
func (g *group) tick(n int) {
	for i := 0; i < n; i++ {
		before := g.leading && g.anyMemberActive()
		g.rn.Tick()
		if before && !g.anyMemberActive() {
			g.sinceCheck = 0
		} else {
			g.sinceCheck++
		}
	}
}

// anyMemberActive reports whether raft marks a member other than this
// replica as recently active.
func (g *group) anyMemberActive() bool {
	any := false
	g.rn.WithProgress(func(id uint64, _ raft.ProgressType, pr tracker.Progress) {
		if id != g.self && pr.RecentActive {
			any = true
		}
	})
	return any
}

type peerTick struct {
	id   HostID
	tick int64
}

// noteAck records an answer to an append of the current term received
// from member from at host tick now.
func (g *group) noteAck(from HostID, now int64) {
	for i := range g.acked {
		if g.acked[i].id == from {
			g.acked[i].tick = now
			return
		}
	}
	g.acked = append(g.acked, peerTick{from, now})
}

// ackedRecently says whether member to answered an append of the leader's
// term within the last period ticks (HostConfig.AppendSparesTicks), which
// makes a heartbeat without a read context redundant: the append reset
// the follower's election timer when it arrived, before the answer left,
// and carried the commit index (a later commit index waits, held back,
// for the next append or the first heartbeat not spared: announce.go);
// the answer marked the follower
// active for CheckQuorum. Not sending the heartbeat is a message loss,
// which raft tolerates. An append that is lost gets no answer, so the
// heartbeats, and with them raft's recovery of a lost append or of a
// member cut off, flow again at most period ticks after the last answer.
// With many busy groups this removes most of a tick's messages and group
// steps: an active group's heartbeats and their answers.
func (g *group) ackedRecently(to HostID, now, period int64) bool {
	for i := range g.acked {
		if g.acked[i].id == to {
			return g.acked[i].tick >= now-period
		}
	}
	return false
}

// refreshMembers reads the configuration from raft after it changed.
func (g *group) refreshMembers() {
	g.members = g.members[:0]
	g.rn.WithProgress(func(id uint64, _ raft.ProgressType, _ tracker.Progress) {
		g.members = append(g.members, id)
	})
	slices.Sort(g.members)
}

// publish records the status that Host.Status reports.
func (g *group) publish() {
	bs := g.rn.BasicStatus()
	g.lead = bs.Lead
	g.mu.Lock()
	g.status.BasicStatus = bs
	g.status.Quiesced = g.quiesced
	g.status.Members = append(g.status.Members[:0], g.members...)
	g.mu.Unlock()
	g.leader.Store(bs.Lead)
}
