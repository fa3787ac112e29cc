package multiraft

import (
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"github.com/raftkit/raft"
	"github.com/raftkit/raft/transport"
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
	// streams are the hosts' SnapshotStreams (SetSnapshotStreams).
	streams map[HostID]SnapshotStreams
	// snapFault, if set, may damage snapshot streams (SetSnapshotFault).
	snapFault func(from, to HostID, g GroupID, w io.Writer) io.Writer
	// maxSnap bounds a streamed snapshot's data.
	maxSnap uint64
	// snaps is the snapshot streams' backoff and counters.
	snaps snapBook
}

// NewMemNetwork returns an empty network.
func NewMemNetwork() *MemNetwork {
	return &MemNetwork{hosts: make(map[HostID]*Host), cut: make(map[HostID]bool),
		links: make(map[[2]HostID]bool), streams: make(map[HostID]SnapshotStreams), maxSnap: defaultMaxSnapshotSize}
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
	streamed := n.streams[e.from] != nil
	n.mu.Unlock()
	if streamed {
		b = n.divertSnapshots(e.from, to, b)
	}
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

// SetSnapshotStreams makes host id stream its snapshots with s, as a
// NetTransport with NetConfig.Snapshots does, and take streamed ones with
// it (nil: back to snapshots inside batches). A stream runs on the
// sender's goroutine, through a pipe, in the wire format.
func (n *MemNetwork) SetSnapshotStreams(id HostID, s SnapshotStreams) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if s == nil {
		delete(n.streams, id)
		return
	}
	n.streams[id] = s
}

// SetSnapshotFault makes f wrap the writer of every snapshot stream from
// then on; the writer it returns may cut or damage the stream (tests of
// the receiver's refusals and the sender's retries). Nil: no faults.
func (n *MemNetwork) SetSnapshotFault(f func(from, to HostID, g GroupID, w io.Writer) io.Writer) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.snapFault = f
}

// StreamsSnapshots implements SnapshotTransport.
func (e memEndpoint) StreamsSnapshots() bool {
	e.n.mu.Lock()
	defer e.n.mu.Unlock()
	return e.n.streams[e.from] != nil
}

// divertSnapshots streams each MsgSnap of b and returns b without them.
func (n *MemNetwork) divertSnapshots(from, to HostID, b Batch) Batch {
	var rest []Item
	for i, it := range b.Items {
		if !isSnapItem(&it) {
			if rest != nil {
				rest = append(rest, it)
			}
			continue
		}
		if rest == nil {
			rest = append(make([]Item, 0, len(b.Items)), b.Items[:i]...)
		}
		n.streamSnapshot(from, to, it)
	}
	if rest != nil {
		b.Items = rest
	}
	return b
}

// streamSnapshot runs one snapshot stream from host from to host to and
// reports its outcome to the sender; or fails it at once while the
// follower's last streams failed (snapretry.go).
func (n *MemNetwork) streamSnapshot(from, to HostID, it Item) {
	n.mu.Lock()
	src, dst := n.hosts[from], n.hosts[to]
	blocked := n.cut[to] || n.cut[from] || n.links[[2]HostID{from, to}]
	out, in, fault := n.streams[from], n.streams[to], n.snapFault
	n.mu.Unlock()
	key := snapKey{from: from, to: to, g: it.Group}
	if n.snaps.hold(src, key, out) {
		src.ReportSnapshot(it.Group, to, raft.SnapshotFailure)
		return
	}
	err := errNoSnapshots
	if dst != nil && !blocked && in != nil {
		rc := &snapReceiver{self: to, from: from, maxSize: n.maxSnap,
			maxFrame: transport.DefaultMaxMessageSize, streams: in, known: dst.hasGroup}
		var got Item
		if got, err = pipeSnapshot(out, rc, it, func(w io.Writer) io.Writer {
			if fault != nil {
				w = fault(from, to, it.Group, w)
			}
			return countingWriter{w: w, n: &n.snaps.bytesOut}
		}, &n.snaps); err == nil {
			dst.Receive(Batch{From: from, Items: []Item{got}})
		}
	}
	n.snaps.outcome(src, key, err, out)
	if src != nil {
		src.ReportSnapshot(it.Group, to, snapStatus(err))
	}
}

// SnapshotTraffic returns the counters of the network's snapshot streams,
// summed over its hosts (Traffic counts batches only).
func (n *MemNetwork) SnapshotTraffic() SnapshotTraffic { return n.snaps.traffic() }

// memSnapChunk is MemNetwork's chunk size: small, so that tests' small
// snapshots span several chunks.
const memSnapChunk = 16 << 10

// pipeSnapshot writes it as a stream (the data from out) into a pipe, wrapped
// by wrap, and reads it with rc on the calling goroutine, counting the
// receiver's side in sb (the sender's bytes are wrap's to count).
func pipeSnapshot(out SnapshotStreams, rc *snapReceiver, it Item, wrap func(io.Writer) io.Writer, sb *snapBook) (Item, error) {
	src, err := out.OpenSnapshot(it.Group, it.Msg)
	if err != nil {
		return Item{}, err
	}
	pr, pw := io.Pipe()
	done := make(chan struct{})
	var werr error // the writer's, read after done
	go func() {
		defer close(done)
		defer src.Close()
		_, werr = writeSnapStream(wrap(pw), it.Group, &it.Msg, src, memSnapChunk, transport.DefaultMaxMessageSize, nil)
		_ = pw.CloseWithError(werr) // nil: the reader sees EOF
	}()
	got, err := func() (Item, error) {
		r := countingReader{r: pr, n: &sb.bytesIn}
		hdr, err := transport.ReadFrame(r, rc.maxFrame, nil)
		if err != nil {
			return Item{}, fmt.Errorf("%w: header: %v", ErrSnapshotTruncated, err)
		}
		return rc.receive(r, hdr)
	}()
	_ = pr.CloseWithError(io.ErrClosedPipe) // unblocks a writer the reader left
	<-done
	if err == nil {
		sb.received.Add(1)
		return got, nil
	}
	sb.refused.Add(1)
	if werr != nil && !errors.Is(werr, io.ErrClosedPipe) {
		return Item{}, werr // the sender failed (its source), not the receiver
	}
	return Item{}, fmt.Errorf("%w: %w", ErrSnapshotRefused, err) // as NetTransport's sender hears it
}
