package multiraft

import (
	"sync"
	"sync/atomic"
)

// MemNetwork connects hosts of one process without sockets, for tests and
// benchmarks: a batch is encoded as it would be on a connection, decoded,
// and handed to the destination host's Receive on the sender's goroutine.
// It counts frames and bytes, and can cut hosts off.
type MemNetwork struct {
	mu     sync.Mutex
	hosts  map[HostID]*Host
	cut    map[HostID]bool
	links  map[[2]HostID]bool // one-way cuts: [from, to]
	frames atomic.Uint64
	bytes  atomic.Uint64
}

// NewMemNetwork returns an empty network.
func NewMemNetwork() *MemNetwork {
	return &MemNetwork{hosts: make(map[HostID]*Host), cut: make(map[HostID]bool),
		links: make(map[[2]HostID]bool)}
}

// Endpoint returns the Transport for host id.
func (n *MemNetwork) Endpoint(id HostID) Transport { return memEndpoint{n: n, from: id} }

// Attach makes h reachable; it replaces a previous host with h's ID.
func (n *MemNetwork) Attach(h *Host) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.hosts[h.ID()] = h
}

// Detach makes host id unreachable (as if its process were gone).
func (n *MemNetwork) Detach(id HostID) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.hosts, id)
}

// Cut drops everything sent to or by host id while cut is true.
func (n *MemNetwork) Cut(id HostID, cut bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.cut[id] = cut
}

// CutLink drops everything sent by from to to (one way) while cut is true.
func (n *MemNetwork) CutLink(from, to HostID, cut bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.links[[2]HostID{from, to}] = cut
}

// Traffic returns the frames and bytes delivered so far.
func (n *MemNetwork) Traffic() (frames, bytes uint64) {
	return n.frames.Load(), n.bytes.Load()
}

type memEndpoint struct {
	n    *MemNetwork
	from HostID
}

// Send implements Transport.
func (e memEndpoint) Send(to HostID, b Batch) {
	n := e.n
	n.mu.Lock()
	dst := n.hosts[to]
	blocked := n.cut[to] || n.cut[e.from] || n.links[[2]HostID{e.from, to}]
	n.mu.Unlock()
	if dst == nil || blocked {
		return
	}
	buf, err := AppendBatch(nil, &b)
	if err != nil {
		return
	}
	n.frames.Add(1)
	n.bytes.Add(uint64(len(buf)))
	got, err := DecodeBatch(buf)
	if err != nil {
		return
	}
	dst.Receive(got)
}
