package multiraft

import (
	"github.com/raftkit/raft"
	"github.com/raftkit/raft/raftpb"
)

// outbox gathers a round's items per destination host, so that each host
// gets one batch per round.
type outbox struct {
	from    HostID
	order   []HostID
	batches map[HostID]*Batch
	// spareTicks is the host's AppendSparesTicks (see ackedRecently).
	spareTicks int64
	// coalesce gathers plain heartbeats and their answers into each
	// batch's Heartbeats and HeartbeatResps (not HostConfig.
	// SeparateHeartbeats).
	coalesce bool
	// all makes addMessages take every message whatever sendsEarly says
	// (HostConfig.AsyncSaves: what must wait for the disk is not among a
	// Ready's messages but among the Responses of its write).
	all bool
	// holdCommits makes leaders hold their commit announcements
	// (announce.go; not HostConfig.AnnounceCommitsAtOnce).
	holdCommits bool
	// sizes is, per destination, about how many items and heartbeats the
	// recent batches held (see batchSize): a new batch starts with room
	// for that many, instead of growing its slices by doubling, which at
	// hundreds of groups per round allocated twice the batch's bytes and
	// copied them.
	sizes map[HostID]batchSize
}

// batchSize is a batch's lengths, or the capacities to give the next one.
type batchSize struct{ items, heartbeats, resps int }

// next returns the capacities for the next batch after one of lengths n:
// n's, or three quarters of the previous capacities when those are
// larger, so that a small batch (a round's second send, quiescing
// heartbeats) does not undo the sizing, while capacity no round needs
// fades.
func (s batchSize) next(n batchSize) batchSize {
	decay := func(prev, n int) int { return max(n, prev-prev/4) }
	return batchSize{decay(s.items, n.items), decay(s.heartbeats, n.heartbeats), decay(s.resps, n.resps)}
}

func newOutbox(from HostID) *outbox {
	return &outbox{from: from, batches: make(map[HostID]*Batch), sizes: make(map[HostID]batchSize)}
}

// newBatch returns an empty batch to host to, with room for what recent
// batches to it held.
func (o *outbox) newBatch(to HostID) *Batch {
	b := &Batch{From: o.from}
	if sz, ok := o.sizes[to]; ok {
		if sz.items > 0 {
			b.Items = itemsWithRoom(sz.items)
		}
		if sz.heartbeats > 0 {
			b.Heartbeats = make([]Heartbeat, 0, sz.heartbeats)
		}
		if sz.resps > 0 {
			b.HeartbeatResps = make([]Heartbeat, 0, sz.resps)
		}
	}
	return b
}

func (o *outbox) add(to HostID, it Item) {
	b, ok := o.batches[to]
	if !ok {
		b = o.newBatch(to)
		o.batches[to] = b
		o.order = append(o.order, to)
	}
	if o.coalesce && it.Kind == KindRaft {
		if resp, ok := coalescible(&it.Msg); ok {
			hb := Heartbeat{Group: it.Group, Term: it.Msg.Term, Commit: it.Msg.Commit}
			if resp {
				b.HeartbeatResps = append(b.HeartbeatResps, hb)
			} else {
				b.Heartbeats = append(b.Heartbeats, hb)
			}
			return
		}
	}
	b.Items = append(b.Items, it)
}

// addMessages adds those of a Ready's messages of group g whose
// sendsEarly(g.leading) equals early, but for those a later message of the
// same Ready supersedes, the heartbeats that recent appends make
// redundant (see ackedRecently), the repeated acknowledgements of
// commit announcements (see repeatsAck) and the commit announcements a
// leader holds (see holdsOrCarries). now is the host's tick count.
func (o *outbox) addMessages(g *group, msgs []raftpb.Message, early bool, now int64) {
	for i := range msgs {
		m := &msgs[i]
		if m.To == o.from || raft.IsLocalMsgTarget(m.To) || (!o.all && sendsEarly(m, g.leading) != early) ||
			superseded(m, msgs[i+1:]) {
			continue
		}
		switch {
		case m.Type == raftpb.MsgHeartbeat && len(m.Context) == 0 && g.ackedRecently(m.To, now, o.spareTicks):
			continue // a held announcement waits on (announce.go)
		case m.Type == raftpb.MsgHeartbeatResp && len(m.Context) == 0 && g.quiesceReq != nil && m.To == g.quiesceReq.From:
			// The answer to a quiescing heartbeat: the leader, quiesced,
			// needs it for nothing (it quiesced with every member marked
			// active, and waking ends its lease); a follower that does
			// not quiesce asks it to wake instead. An answer with a read
			// context is another heartbeat's, stepped in the same round:
			// it confirms a read round, and without it the read waits
			// (the leader's heartbeats, quiesced, do not ask again).
			continue
		case g.repeatsAck(m):
			continue
		case o.holdsOrCarries(g, m):
			continue
		}
		o.add(m.To, Item{Group: g.id, Kind: KindRaft, Msg: *m})
	}
}

// superseded says whether a later message of the same Ready (later)
// makes m redundant, so that not sending it (a message loss, which raft
// tolerates) loses nothing:
//   - of several heartbeats to one peer (a woken leader ages its clock by
//     many ticks at once) the last carries the latest tick and read round;
//   - an append without entries (raft's announcement of a new commit
//     index) followed by another append to the same peer: the later one
//     carries that commit index or a newer one, and raft tracks nothing
//     in flight for an empty append;
//   - a heartbeat without a read context followed by an append to the
//     same peer (a woken leader's ageing ticks, then its first append):
//     the append resets the member's election timer and carries the
//     commit index, and its answer marks the member active;
//   - an acknowledgement of appends followed by another to the same peer
//     acknowledging at least as much: the leader keeps only the highest.
//
// This matters with many groups: a round that steps an acknowledgement
// and a new proposal of one group would otherwise send two appends and
// get two acknowledgements for one.
func superseded(m *raftpb.Message, later []raftpb.Message) bool {
	switch {
	case m.Type == raftpb.MsgHeartbeat && len(m.Context) == 0 && appendFollows(m, later):
		return true
	case m.Type == raftpb.MsgHeartbeat:
	case m.Type == raftpb.MsgApp && len(m.Entries) == 0:
	case m.Type == raftpb.MsgAppResp && !m.Reject:
	default:
		return false
	}
	for i := range later {
		l := &later[i]
		if l.Type != m.Type || l.To != m.To || l.Term != m.Term {
			continue
		}
		if m.Type != raftpb.MsgAppResp || (!l.Reject && l.Index >= m.Index) {
			return true
		}
	}
	return false
}

// appendFollows reports whether later holds an append to m's peer in m's
// term.
func appendFollows(m *raftpb.Message, later []raftpb.Message) bool {
	for i := range later {
		if later[i].Type == raftpb.MsgApp && later[i].To == m.To && later[i].Term == m.Term {
			return true
		}
	}
	return false
}

// sendsEarly says whether m, from a Ready taken while its group's replica
// leads, may leave before the Ready is durable: a leader's appends and
// heartbeats, as the Raft thesis allows (10.2.1: the leader writes to its
// disk in parallel with replicating). Nothing in them depends on the
// leader's own write: its term and vote were made durable before it could
// win, and raft counts the leader's own copy of new entries toward
// commitment only when Advance steps its self-acknowledgement, after the
// save, so none of them is committed or applied before it is durable here
// (only entries durable before the round are applied during the save).
// Every other
// message (acknowledgements, votes, anything of a follower or candidate)
// waits for the save.
func sendsEarly(m *raftpb.Message, leader bool) bool {
	return leader && (m.Type == raftpb.MsgApp || m.Type == raftpb.MsgHeartbeat)
}

// reset empties the outbox for reuse, once its batches were sent (the
// transport owns their items).
func (o *outbox) reset() {
	clear(o.batches)
	o.order = o.order[:0]
}

// send hands every batch to the transport, in the order hosts first
// appeared (deterministic).
func (o *outbox) send(h *Host) {
	defer o.reset()
	for _, to := range o.order {
		b := o.batches[to]
		o.sizes[to] = o.sizes[to].next(batchSize{len(b.Items), len(b.Heartbeats), len(b.HeartbeatResps)})
		h.stats.batchesOut.Add(1)
		h.stats.itemsOut.Add(uint64(b.wireItems()))
		h.stats.heartbeatsOut.Add(uint64(len(b.Heartbeats) + len(b.HeartbeatResps)))
		h.cfg.Transport.Send(to, *b)
	}
}
