package multiraft

import "slices"

// liveness tracks peer hosts once for all groups: a host counts as failed
// after HostTimeoutTicks of the local clock without a batch from it (any
// batch, a ping included), and as alive again on its next batch.
type liveness struct {
	clock int64
	peers map[HostID]*peerLive
	ids   []HostID // sorted, for deterministic pings
}

type peerLive struct {
	lastHeard int64
	alive     bool
}

func (l *liveness) init(peers []HostID) {
	l.peers = make(map[HostID]*peerLive)
	for _, id := range peers {
		l.add(id)
	}
}

func (l *liveness) add(id HostID) {
	if _, ok := l.peers[id]; ok || id == 0 {
		return
	}
	// A new peer gets a full timeout of grace before it counts as failed.
	l.peers[id] = &peerLive{lastHeard: l.clock, alive: true}
	l.ids = append(l.ids, id)
	slices.Sort(l.ids)
}

func (l *liveness) remove(id HostID) {
	delete(l.peers, id)
	l.ids = slices.DeleteFunc(l.ids, func(x HostID) bool { return x == id })
}

// heard records a batch from id and reports whether id came back.
func (l *liveness) heard(id HostID) bool {
	p, ok := l.peers[id]
	if !ok {
		return false
	}
	p.lastHeard = l.clock
	if p.alive {
		return false
	}
	p.alive = true
	return true
}

// markDown counts id as failed at once and reports whether it counted as
// alive.
func (l *liveness) markDown(id HostID) bool {
	p, ok := l.peers[id]
	if !ok || !p.alive {
		return false
	}
	p.alive = false
	return true
}

// tick advances the clock and returns the peers that just failed.
func (l *liveness) tick(timeout int) (down []HostID) {
	l.clock++
	for _, id := range l.ids {
		p := l.peers[id]
		if p.alive && l.clock-p.lastHeard > int64(timeout) {
			p.alive = false
			down = append(down, id)
		}
	}
	return down
}

// alive reports whether id counts as alive; hosts not tracked do.
func (l *liveness) alive(id HostID) bool {
	p, ok := l.peers[id]
	return !ok || p.alive
}

// hostAlive reports whether host id counts as alive.
func (h *Host) hostAlive(id HostID) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.live.alive(id)
}

// PeerUnreachable is the transport's report that a stream to or from
// peer host id broke or that a dial to it failed. With
// HostConfig.FastFailover the host counts id as failed at once, instead of
// after HostTimeoutTicks of silence, and tells every group: quiesced
// replicas led from id wake, and every replica led from id reports its
// leader unreachable to raft, so that it campaigns one tick after the
// leader's lease. Without FastFailover it does nothing. The next batch
// from id counts it as alive again, so a report about a host that is in
// fact up costs one wake-up of the groups and nothing else. NetTransport
// calls it; another Transport should too.
func (h *Host) PeerUnreachable(id HostID) {
	if !h.cfg.FastFailover {
		return
	}
	h.mu.Lock()
	if h.stopped || !h.live.markDown(id) {
		h.mu.Unlock()
		return
	}
	all := slices.Clone(h.order) // in creation order: runs replay
	h.mu.Unlock()
	h.stats.peersDown.Add(1)
	h.announce(all, func(in *inbox) { in.hostsDown = append(in.hostsDown, id) })
}

// AddPeer starts tracking the liveness of host id (and pinging it).
func (h *Host) AddPeer(id HostID) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if id != h.cfg.ID {
		h.live.add(id)
	}
}

// RemovePeer stops tracking host id.
func (h *Host) RemovePeer(id HostID) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.live.remove(id)
}

// PeerAlive reports whether this host counts peer host id as alive.
func (h *Host) PeerAlive(id HostID) bool { return h.hostAlive(id) }

// PeerHeardWithin reports whether this host heard from peer host id (a
// batch, a ping, any frame) within the last ticks ticks of its clock:
// a stricter test than PeerAlive, which keeps a silent peer alive for
// HostTimeoutTicks. False for a host it does not track.
func (h *Host) PeerHeardWithin(id HostID, ticks int) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.live.heardWithin(id, ticks)
}

// heardWithin reports whether id was heard within the last ticks ticks.
func (l *liveness) heardWithin(id HostID, ticks int) bool {
	p, ok := l.peers[id]
	return ok && l.clock-p.lastHeard <= int64(ticks)
}
