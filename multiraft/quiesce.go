package multiraft

import (
	"slices"

	"github.com/raftkit/raft"
	"github.com/raftkit/raft/raftpb"
	"github.com/raftkit/raft/tracker"
)

// endRound decides, after g's Ready was handled, whether g quiesces: a
// follower answers a quiescing heartbeat it received this round; a leader
// that found its group idle long enough quiesces it.
func (h *Host) endRound(g *group, in *inbox, out *outbox) {
	if in.busy() {
		g.idleTicks = 0
	}
	// Campaigns and transfers come after the round's Ready was applied:
	// raft refuses to campaign with committed configuration changes not
	// yet applied (a new group's bootstrap entries).
	if in.campaign {
		_ = g.rn.Campaign()
	}
	if in.transfer != 0 {
		g.rn.TransferLeader(in.transfer)
	}
	if len(in.compacts) > 0 {
		h.compact(g, in.compacts)
	}
	if g.readTicks > 0 {
		g.readTicks = max(0, g.readTicks-in.ticks)
	}
	if q := g.quiesceReq; q != nil {
		g.quiesceReq = nil
		h.answerQuiesce(g, in, q, out)
		return
	}
	if g.quiesced || in.ticks == 0 || h.cfg.DisableQuiescence {
		return
	}
	g.idleTicks += in.ticks
	if g.idleTicks >= h.cfg.QuiesceAfterTicks {
		h.maybeQuiesceLeader(g, out)
	}
}

// maybeQuiesceLeader quiesces g if this replica leads it and the group has
// nothing to do: every entry committed, applied here, and acknowledged by
// every member (so followers can be told the commit index in a
// heartbeat), no proposal, read or transfer pending, no Ready left,
// no write of its own still with the saver (AsyncSaves), every member's
// host alive (a failed member must be noticed by a ticking
// leader), and, with CheckQuorum, every member heard from since raft's
// last quorum check. Waking ages the leader's clock through a quorum
// check, which reads those marks as they were at quiescence: a leader
// that quiesced right after a check cleared them (a woken leader whose
// ageing just ran one, say) would find no member active at its next
// wake-up and step down, costing its group an election for nothing. For
// the same reason, with CheckQuorum it quiesces only within the first
// third of an election timeout after a quorum check (sinceCheck): the
// ageing then runs the check late in its ElectionTick ticks, and the
// next one comes most of an election timeout after the wake-up, time
// enough for the members to answer the wake-up's heartbeats. Quiescing
// late in the period instead left the next check a tick or two after the
// wake-up, before any answer could arrive: the leader stepped down. It
// then sends each member a quiescing heartbeat and stops ticking the
// group.
func (h *Host) maybeQuiesceLeader(g *group, out *outbox) {
	bs := g.rn.BasicStatus()
	if bs.RaftState != raft.StateLeader || bs.LeadTransferee != raft.None ||
		g.readTicks > 0 || bs.Applied != bs.Commit || g.rn.HasReady() || g.unsaved > 0 {
		return
	}
	idle := true
	g.rn.WithProgress(func(id uint64, _ raft.ProgressType, pr tracker.Progress) {
		if pr.Match != bs.Commit || (id != h.cfg.ID && !h.hostAlive(id)) ||
			(h.cfg.CheckQuorum && !pr.RecentActive) {
			idle = false
		}
	})
	if h.cfg.CheckQuorum && g.sinceCheck > h.cfg.ElectionTick/3 {
		idle = false
	}
	if !idle {
		return
	}
	g.dropHeld() // the quiescing heartbeats carry the commit index
	for _, id := range g.members {
		if id == h.cfg.ID {
			continue
		}
		out.add(id, Item{Group: g.id, Kind: KindQuiesce, Msg: raftpb.Message{
			Type: raftpb.MsgHeartbeat, To: id, From: h.cfg.ID, Term: bs.Term, Commit: bs.Commit,
		}})
	}
	h.setQuiesced(g, true)
}

// answerQuiesce is a follower's answer to the quiescing heartbeat q: it
// quiesces only if its log ends at the leader's commit index in the
// leader's term, all of it committed and applied, and it has nothing else
// to do; otherwise it asks the leader to wake up and replicate.
func (h *Host) answerQuiesce(g *group, in *inbox, q *raftpb.Message, out *outbox) {
	bs := g.rn.BasicStatus()
	last, err := g.st.LastIndex()
	ok := err == nil && !in.busy() && !g.rn.HasReady() && g.unsaved == 0 &&
		bs.RaftState == raft.StateFollower && bs.Lead == q.From && bs.Term == q.Term &&
		bs.Commit == q.Commit && last == q.Commit && bs.Applied == bs.Commit
	if ok {
		h.setQuiesced(g, true)
		return
	}
	if !g.quiesced {
		h.sendWake(g, q.From, out)
	}
}

// wake ends g's quiescence. A leader first ages its clock by ElectionTick
// ticks: its lease (which it reckons in its own ticks, frozen while
// quiesced) is over, the same ticks send heartbeats that wake its
// followers, and CheckQuorum runs. A follower asks its leader to wake, so
// that a member woken by a message from elsewhere (a candidate, a restarted
// peer) brings the leader's heartbeats back before its election timer
// runs out.
func (h *Host) wake(g *group, out *outbox) {
	h.setQuiesced(g, false)
	g.idleTicks = 0
	bs := g.rn.BasicStatus()
	if bs.RaftState == raft.StateLeader {
		g.tick(h.cfg.ElectionTick)
		return
	}
	if bs.Lead != raft.None {
		h.sendWake(g, bs.Lead, out)
	}
}

func (h *Host) sendWake(g *group, to HostID, out *outbox) {
	if to == h.cfg.ID {
		return
	}
	out.add(to, Item{Group: g.id, Kind: KindWake, Msg: raftpb.Message{From: h.cfg.ID, To: to}})
}

// livenessWakes reports whether host failures or recoveries announced in
// in concern quiesced g: a follower whose leader's host failed must tick
// to elect another leader; a leader with a member on a host that came back
// wakes to catch it up.
func (h *Host) livenessWakes(g *group, in *inbox) bool {
	if slices.Contains(in.hostsDown, g.lead) {
		return true
	}
	if g.lead != h.cfg.ID {
		return false
	}
	for _, id := range in.hostsUp {
		if slices.Contains(g.members, id) {
			return true
		}
	}
	return false
}

// setQuiesced moves g out of or into the host's ticking set.
func (h *Host) setQuiesced(g *group, q bool) {
	if g.quiesced == q {
		return
	}
	g.quiesced = q
	if q {
		h.stats.quiesces.Add(1)
	} else {
		h.stats.wakes.Add(1)
	}
	h.mu.Lock()
	if !g.gone && h.groups[g.id] == g {
		h.setAwakeLocked(g, !q)
	}
	h.mu.Unlock()
}
