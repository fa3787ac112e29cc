package multiraft

import (
	"slices"

	"github.com/raftkit/raft"
	"github.com/raftkit/raft/raftpb"
)

// Commit announcements, held back.
//
// When a leader's commit index moves, raft tells every member at once with
// an append that carries no entries, only the new commit index. Each such
// announcement gives the member's group a turn of its own: a step, a
// Ready with a HardState to save and entries to apply. At one write per
// group and round (hundreds of lightly written shards) that doubles the
// follower turns per write, though nothing waits for them: a write is
// answered once the leader applied it, and a follower's applied index
// only matters to reads served there, which raft makes wait for the
// commit index they need.
//
// So, unless HostConfig.AnnounceCommitsAtOnce, a leader holds its commit
// announcements (at most one per member, the latest) and lets them go
//   - with its next message of the same group to that member, in the same
//     batch: a read index answer, a transfer's timeout, a heartbeat with
//     an older commit index (a member that has not acknowledged all that
//     is committed); an append of the same term supersedes the
//     announcement instead (it carries that commit index or a newer one),
//     and so does a heartbeat carrying its commit index;
//   - at the end of the round in which the leader applied the member's
//     removal (releaseToFormer): raft sends a removed member nothing
//     more, and it needs that commit index to apply its own removal.
//
// An announcement is not held from a member that forwarded proposals the
// commit index covers (owe, settlesOwed): that member answers its clients
// once it applied their entries, so holding would add the whole wait
// below to every write made through a follower.
//
// A heartbeat that a recent append spares (ackedRecently) does not let
// the announcement go: the member answered an append within the last
// AppendSparesTicks, and only an append with entries gets an answer
// (repeatsAck), so while the member keeps answering, new writes keep
// reaching it, each append carrying the commit index of the writes before
// it. Once the writes stop, the spared ticks run out and raft's next
// heartbeat goes, carrying the commit index and superseding the
// announcement. So an announcement waits at most AppendSparesTicks +
// HeartbeatTick ticks after the member's last answer, and never travels
// alone: a group written every few ticks, hundreds of which a host may
// lead, costs its members no turn for announcements at all. (Until
// 2026-12-04 the announcement went in place of the first spared
// heartbeat, within HeartbeatTick: at 1000 shards in raftkv, 17% more
// messages per write and 14% more group turns.)
//
// Holding a message is a delay, which raft tolerates like any other; an
// announcement dropped because a later append or a quiescing heartbeat
// carries its commit index is a loss of a message whose content arrives
// anyway. The announcements of a replica that stopped leading are dropped
// (members refuse an older term's messages), and so are a quiescing
// leader's: its quiescing heartbeats carry the commit index, which the
// members must have reached to quiesce (answerQuiesce). Raft tracks
// nothing in flight for an append without entries (no flow control
// window, and a probe it pauses resumes at the next heartbeat answer).

// peerIndex is a member and a log index.
type peerIndex struct {
	id    HostID
	index uint64
}

// noteForwarded records, for the members whose proposals the round
// stepped (forwarding), the last index of rd's new entries, which hold
// them; raft appends a leader's proposals to its log at once, so they
// are in the Ready of the round that stepped them. A proposal raft
// dropped (no entries) leaves nothing owed. A replica that stops leading
// owes nothing.
func (g *group) noteForwarded(rd *raft.Ready) {
	if !g.leading {
		g.owed, g.forwarding = g.owed[:0], g.forwarding[:0]
		return
	}
	if len(g.forwarding) == 0 {
		return
	}
	if n := len(rd.Entries); n > 0 {
		last := rd.Entries[n-1].Index
		for _, id := range g.forwarding {
			g.owe(id, last)
		}
	}
	g.forwarding = g.forwarding[:0]
}

// owe records that member id waits for the commit index to reach index.
func (g *group) owe(id HostID, index uint64) {
	for i := range g.owed {
		if g.owed[i].id == id {
			g.owed[i].index = max(g.owed[i].index, index)
			return
		}
	}
	g.owed = append(g.owed, peerIndex{id, index})
}

// settlesOwed reports whether m, a message of the leader g, carries to
// its member a commit index that member waits for (owe): an announcement
// that does must not be held. Any append or heartbeat carrying it
// settles what is owed.
func (g *group) settlesOwed(m *raftpb.Message) bool {
	if m.Type != raftpb.MsgApp && m.Type != raftpb.MsgHeartbeat {
		return false
	}
	for i := range g.owed {
		if g.owed[i].id == m.To && m.Commit >= g.owed[i].index {
			last := len(g.owed) - 1
			g.owed[i] = g.owed[last]
			g.owed = g.owed[:last]
			return true
		}
	}
	return false
}

// isAnnouncement reports whether m is an append without entries: raft's
// announcement of a commit index (or an empty probe, which may wait the
// same way).
func isAnnouncement(m *raftpb.Message) bool {
	return m.Type == raftpb.MsgApp && len(m.Entries) == 0
}

// hold keeps m, an announcement of the leading replica g, in place of the
// one held for the same member, if any.
func (g *group) hold(m *raftpb.Message) {
	for i := range g.held {
		if g.held[i].To == m.To {
			g.held[i] = *m
			return
		}
	}
	g.held = append(g.held, *m)
}

// takeHeld removes and returns the announcement held for member to; ok is
// false if there is none.
func (g *group) takeHeld(to HostID) (m raftpb.Message, ok bool) {
	for i := range g.held {
		if g.held[i].To == to {
			m = g.held[i]
			last := len(g.held) - 1
			g.held[i] = g.held[last]
			g.held[last] = raftpb.Message{}
			g.held = g.held[:last]
			return m, true
		}
	}
	return m, false
}

// dropHeld forgets every held announcement.
func (g *group) dropHeld() {
	clear(g.held)
	g.held = g.held[:0]
}

// holdsOrCarries is addMessages' part in holding announcements, for m,
// a message of g about to be added: it reports whether m is held instead
// (an announcement of a leader, with holding on); otherwise the
// announcement held for m's member, if any, goes first, unless m
// supersedes it: an append of the same term, or a heartbeat of the same
// term that carries the same commit index or a newer one.
func (o *outbox) holdsOrCarries(g *group, m *raftpb.Message) bool {
	owed := g.settlesOwed(m)
	if o.holdCommits && g.leading && isAnnouncement(m) && !owed {
		g.hold(m)
		return true
	}
	if len(g.held) == 0 {
		return false
	}
	held, ok := g.takeHeld(m.To)
	if !ok || m.Term == held.Term && (m.Type == raftpb.MsgApp || m.Type == raftpb.MsgHeartbeat && m.Commit >= held.Commit) {
		return false
	}
	o.add(held.To, Item{Group: g.id, Kind: KindRaft, Msg: held})
	return false
}

// releaseHeld adds the announcement g holds for member to, if any, to o.
func (o *outbox) releaseHeld(g *group, to HostID) {
	if held, ok := g.takeHeld(to); ok {
		o.add(to, Item{Group: g.id, Kind: KindRaft, Msg: held})
	}
}

// releaseToFormer adds to o the announcements g holds for hosts no longer
// among its members (endGroups, after the round's configuration changes
// were applied). The leader stops sending to a member it removed, so
// neither its next message nor its next heartbeat would carry the
// announcement, and the removed member needs it: its commit index
// covers the change that removes it, which it must apply to learn that
// it is out.
func (o *outbox) releaseToFormer(g *group) {
	for i := 0; i < len(g.held); {
		to := g.held[i].To
		if _, member := slices.BinarySearch(g.members, to); member {
			i++
			continue
		}
		o.releaseHeld(g, to) // moves the last held into i
	}
}
