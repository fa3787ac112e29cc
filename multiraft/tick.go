package multiraft

import "slices"

// Tick advances the host's clock by one tick: every group that is not
// quiesced gets a tick (and is scheduled), the host pings its peers every
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
	deferring := make([]bool, len(awake))
	for i, g := range awake {
		deferring[i] = h.deferrableLocked(g)
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
	limit := h.tickDeferLimit()
	for i, g := range awake {
		g.mu.Lock()
		g.in.ticks++
		held := deferring[i] && g.in.ticks < limit
		g.mu.Unlock()
		if held {
			awake[i] = nil // enqueueAll skips it
		}
	}
	h.sched.enqueueAll(awake)
	h.announce(sleeping, func(in *inbox) { in.hostsDown = append(in.hostsDown, down...) })
}

// deferrableLocked reports whether Tick may hold back g's ticks instead
// of scheduling g for each: g's replica follows a leader on another host
// that counts as alive. Such a follower's tick only ages its election
// timer, and the leader's heartbeats and appends schedule it anyway, every
// heartbeat period, taking the held ticks first (handleInbox); scheduling
// it for every tick as well made most of a busy host's rounds' groups
// (ticks of hundreds of awake followers) do nothing. Holding ticks back
// only makes the follower's timer run late (by less than
// tickDeferLimit ticks), which delays an election and never shortens a
// leader's lease. A follower whose leader's host failed, and every
// leader and candidate, is scheduled for every tick. h.mu held.
func (h *Host) deferrableLocked(g *group) bool {
	if !g.following.Load() {
		return false
	}
	lead := HostID(g.leader.Load())
	return lead != 0 && lead != h.cfg.ID && h.live.alive(lead)
}

// tickDeferLimit is how many ticks a deferrable follower may hold before
// Tick schedules it: half an election timeout, so that a follower whose
// leader stopped heartbeating (with its host up) still campaigns within
// one and a half election timeouts at worst.
func (h *Host) tickDeferLimit() int {
	return max(1, h.cfg.ElectionTick/2)
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

func addTick(in *inbox) { in.ticks++ }

// announce hands a liveness change to each of gs and schedules them.
func (h *Host) announce(gs []*group, f func(in *inbox)) {
	for _, g := range gs {
		g.push(f)
	}
	h.sched.enqueueAll(gs)
}

// Receive hands the host a batch that arrived from another host. Items for
// groups the host does not run, and items whose message does not claim to
// come from the batch's sender to this host, are dropped and counted. It
// never blocks on the groups' processing.
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
	targets := make([]*group, len(b.Items))
	for i := range b.Items {
		targets[i] = h.groups[b.Items[i].Group]
	}
	h.mu.Unlock()
	from := b.From
	h.announce(sleeping, func(in *inbox) { in.hostsUp = append(in.hostsUp, from) })
	h.stats.batchesIn.Add(1)
	for i, g := range targets {
		it := &b.Items[i]
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
