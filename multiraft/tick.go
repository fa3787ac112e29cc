package multiraft

import (
	"slices"

	"github.com/raftkit/raft"
)

// Tick advances the host's clock by one tick: every group that is not
// quiesced gets a tick (scheduled at once, or held in its inbox while it
// may wait: tickDeferLimitLocked), the host pings its peers every
// PingTicks, and peers silent for HostTimeoutTicks count as failed, which
// wakes the quiesced groups they lead. With HostConfig.TickInterval set,
// the host's ticker calls it; otherwise the caller does.
func (h *Host) Tick() {
	h.mu.Lock()
	if h.stopped {
		h.mu.Unlock()
		return
	}
	h.ticks.Add(1)
	down := h.live.tick(h.cfg.HostTimeoutTicks)
	h.stats.peersDown.Add(uint64(len(down)))
	var ping []HostID
	if h.live.clock%int64(h.cfg.PingTicks) == 0 {
		ping = slices.Clone(h.live.ids)
	}
	awake := make([]*group, len(h.awake))
	copy(awake, h.awake)
	limits := make([]int, len(awake))
	for i, g := range awake {
		limits[i] = h.tickDeferLimitLocked(g)
	}
	var sleeping []*group
	if len(down) > 0 {
		sleeping = h.quiescedLocked()
	}
	h.mu.Unlock()
	// Pings first: however many groups this tick schedules, the peers
	// hear from this host on time.
	for _, id := range ping {
		h.cfg.Transport.Send(id, Batch{From: h.cfg.ID})
		h.stats.pings.Add(1)
	}
	for i, g := range awake {
		g.mu.Lock()
		g.in.ticks++
		held := g.in.ticks < limits[i]
		g.mu.Unlock()
		if held {
			awake[i] = nil // enqueueAll skips it
		}
	}
	h.sched.enqueueAll(awake)
	h.announce(sleeping, func(in *inbox) { in.hostsDown = append(in.hostsDown, down...) })
}

// tickDeferLimitLocked is how many ticks g may hold before Tick
// schedules it; until then its ticks wait in its inbox for the next round
// that has g for another reason. Scheduling every awake group for every
// tick made most of a busy host's rounds' groups (hundreds of awake
// shards) step a tick and do nothing else. h.mu held.
//
//   - A follower of a leader on another host that counts as alive holds
//     up to half an election timeout: its tick only ages its election
//     timer, and the leader's heartbeats and appends schedule it every
//     heartbeat period, taking the held ticks first (handleInbox). Its
//     timer runs late by less than the limit, which delays an election
//     and makes it honour the leader's lease longer, never shorter; a
//     follower whose leader stopped heartbeating (its host up) still
//     campaigns within one and a half election timeouts.
//   - A leader holds up to HeartbeatTick ticks, so its heartbeats keep
//     their period; its quorum check may run a tick late (stepping down
//     a tick later). Not with ReadOnlyLeaseBased: a late clock would
//     stretch the leader's lease.
//   - Every other replica (a candidate, a follower of no leader or of a
//     failed host) is scheduled for every tick.
func (h *Host) tickDeferLimitLocked(g *group) int {
	switch g.role.Load() {
	case roleFollowing:
		lead := HostID(g.leader.Load())
		if lead != 0 && lead != h.cfg.ID && h.live.alive(lead) {
			return max(1, h.cfg.ElectionTick/2)
		}
	case roleLeading:
		if h.cfg.ReadOnlyOption != raft.ReadOnlyLeaseBased {
			return max(1, h.cfg.HeartbeatTick)
		}
	}
	return 1
}

// quiescedLocked returns the quiesced groups, in creation order. h.mu held.
func (h *Host) quiescedLocked() []*group {
	var out []*group
	for _, g := range h.order {
		if g.awakeIdx < 0 {
			out = append(out, g)
		}
	}
	return out
}

// announce hands a liveness change to each of gs and schedules them.
func (h *Host) announce(gs []*group, f func(in *inbox)) {
	for _, g := range gs {
		g.push(f)
	}
	h.sched.enqueueAll(gs)
}

// Receive hands the host a batch that arrived from another host, its
// coalesced heartbeats expanded into the groups' raft messages. Items for
// groups the host does not run, and items whose message does not claim to
// come from the batch's sender to this host, are dropped and counted. It
// never blocks on the groups' processing, and it keeps none of b's
// slices (the items are copied), so the caller may reuse them once it
// returns.
func (h *Host) Receive(b Batch) {
	h.mu.Lock()
	if h.stopped {
		h.mu.Unlock()
		return
	}
	var sleeping []*group
	if h.live.heard(b.From) {
		sleeping = h.quiescedLocked()
	}
	items := b.expandHeartbeats(h.cfg.ID)
	targets := make([]*group, len(items))
	for i := range items {
		targets[i] = h.groups[items[i].Group]
	}
	h.mu.Unlock()
	from := b.From
	h.announce(sleeping, func(in *inbox) { in.hostsUp = append(in.hostsUp, from) })
	h.stats.batchesIn.Add(1)
	for i, g := range targets {
		it := &items[i]
		if g == nil || it.Msg.From != b.From || it.Msg.To != h.cfg.ID {
			h.stats.itemsDropped.Add(1)
			targets[i] = nil
			continue
		}
		g.mu.Lock()
		g.in.items = append(g.in.items, *it)
		g.mu.Unlock()
	}
	h.sched.enqueueAll(targets)
}
