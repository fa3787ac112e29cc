package multiraft

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/raftkit/raft/transport"
)

// NetConfig configures a NetTransport.
type NetConfig struct {
	// Stream gives the cluster ID, this host's ID, the frame limit, the
	// I/O timeout and TLS, shared with package transport.
	Stream transport.BatchStreamConfig
	// ListenAddr is where peers' streams arrive ("127.0.0.1:0" picks a
	// port; see Addr).
	ListenAddr string
	// QueueSize bounds the batches waiting for one peer; more are
	// dropped (raft resends). Default 1024.
	QueueSize int
	// RedialDelay is the pause before redialing a peer that is down.
	// Default 100ms.
	RedialDelay time.Duration
	// Logger receives logs. Default: none.
	Logger *zap.Logger

	// Snapshots, when set, streams every MsgSnap on a connection of its
	// own instead of inside a batch frame (see SnapshotStreams): the
	// snapshot is then bounded by MaxSnapshotSize, not by the frame
	// limit, and never held whole in memory by the transport. Every host
	// of a cluster must agree on it: a host without it refuses streams.
	Snapshots SnapshotStreams
	// SnapshotChunkSize is the most data one chunk frame of a snapshot
	// stream carries. Default 1 MiB (at most the frame limit).
	SnapshotChunkSize int
	// SnapshotStreamsPerPeer bounds the snapshot streams to one peer
	// host at a time, in each direction; more are failed at once (raft
	// retries later). Default 2.
	SnapshotStreamsPerPeer int
	// MaxSnapshotSize bounds the data of one incoming snapshot stream.
	// Default 64 GiB.
	MaxSnapshotSize uint64
}

// NetTransport is the Transport of hosts on different machines: one TCP
// connection (a batch stream of package transport: its handshake, frame
// limit and TLS) to each peer host, written by one goroutine that merges
// every batch queued for that host since its last write into one frame.
// The messages of all groups for a host thus share one connection and,
// under load, one frame and one write.
type NetTransport struct {
	cfg NetConfig
	ln  net.Listener
	lg  *zap.Logger

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	host    *Host
	peers   map[HostID]*netPeer
	inbound map[net.Conn]struct{}
	// snapsIn counts the snapshot streams being received per peer.
	snapsIn map[HostID]int
	// snaps is the snapshot streams' backoff and counters.
	snaps snapBook

	framesOut, bytesOut, dropped atomic.Uint64
}

type netPeer struct {
	id     HostID
	addr   string
	queue  chan Batch
	ctx    context.Context
	cancel context.CancelFunc
	// snaps holds a token per snapshot stream to the peer.
	snaps chan struct{}
}

// NewNetTransport listens on cfg.ListenAddr. Hand it its host with Serve
// once the host exists (the host is built with this transport).
func NewNetTransport(cfg NetConfig) (*NetTransport, error) {
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = 1024
	}
	if cfg.RedialDelay <= 0 {
		cfg.RedialDelay = 100 * time.Millisecond
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Stream.MaxFrameSize == 0 {
		cfg.Stream.MaxFrameSize = transport.DefaultMaxMessageSize
	}
	cfg = cfg.snapshotDefaults()
	ln, err := net.Listen("tcp", cfg.ListenAddr)
	if err != nil {
		return nil, fmt.Errorf("multiraft: listening: %w", err)
	}
	t := &NetTransport{cfg: cfg, ln: ln, lg: cfg.Logger.With(zap.Uint64("host", cfg.Stream.ID)),
		peers: make(map[HostID]*netPeer), inbound: make(map[net.Conn]struct{}), snapsIn: make(map[HostID]int)}
	t.ctx, t.cancel = context.WithCancel(context.Background())
	t.wg.Add(1)
	go t.acceptLoop()
	return t, nil
}

// Addr returns the listening address.
func (t *NetTransport) Addr() net.Addr { return t.ln.Addr() }

// Serve starts handing received batches to h.
func (t *NetTransport) Serve(h *Host) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.host = h
}

// AddPeer adds (or readdresses) peer host id at addr and starts its writer.
func (t *NetTransport) AddPeer(id HostID, addr string) {
	t.RemovePeer(id)
	ctx, cancel := context.WithCancel(t.ctx)
	p := &netPeer{id: id, addr: addr, queue: make(chan Batch, t.cfg.QueueSize), ctx: ctx, cancel: cancel,
		snaps: make(chan struct{}, t.cfg.SnapshotStreamsPerPeer)}
	t.mu.Lock()
	t.peers[id] = p
	t.mu.Unlock()
	t.wg.Add(1)
	go t.writeLoop(ctx, p)
}

// RemovePeer stops sending to id and refuses its streams from now on.
func (t *NetTransport) RemovePeer(id HostID) {
	t.mu.Lock()
	p := t.peers[id]
	delete(t.peers, id)
	t.mu.Unlock()
	if p != nil {
		p.cancel()
	}
}

// Send implements Transport: it queues b for host to, or drops it when the
// queue is full or the host unknown. With Snapshots, its MsgSnaps are
// streamed instead.
func (t *NetTransport) Send(to HostID, b Batch) {
	t.mu.Lock()
	p := t.peers[to]
	t.mu.Unlock()
	if t.cfg.Snapshots != nil {
		b = t.divertSnapshots(to, p, b)
	}
	if p == nil {
		t.dropped.Add(1)
		return
	}
	select {
	case p.queue <- b:
	default:
		t.dropped.Add(1)
	}
}

// Traffic returns the frames and bytes written and the batches dropped.
func (t *NetTransport) Traffic() (frames, bytes, dropped uint64) {
	return t.framesOut.Load(), t.bytesOut.Load(), t.dropped.Load()
}

// Close stops listening, closes every connection and waits for the
// transport's goroutines.
func (t *NetTransport) Close() error {
	t.cancel()
	err := t.ln.Close()
	t.mu.Lock()
	for c := range t.inbound {
		_ = c.Close()
	}
	t.mu.Unlock()
	t.wg.Wait()
	return err
}

// writeLoop owns p's connection: it dials (again, after RedialDelay, when
// the connection breaks) and writes, per wake-up, everything queued as one
// frame.
func (t *NetTransport) writeLoop(ctx context.Context, p *netPeer) {
	defer t.wg.Done()
	var conn net.Conn
	defer func() {
		if conn != nil {
			_ = conn.Close()
		}
	}()
	var buf, frame []byte
	for {
		var b Batch
		select {
		case <-ctx.Done():
			return
		case b = <-p.queue:
		}
		b = drainInto(b, p.queue)
		if conn == nil {
			c, err := transport.DialBatchStream(ctx, t.cfg.Stream, p.id, p.addr)
			if err != nil {
				t.dropped.Add(1)
				t.lg.Debug("dialing a peer host", zap.Uint64("peer", p.id), zap.Error(err))
				t.unreachable(p.id)
				if !sleepCtx(ctx, t.cfg.RedialDelay) {
					return
				}
				continue
			}
			conn = c
		}
		var err error
		if buf, frame, err = t.writeBatch(conn, &b, buf[:0], frame[:0]); err != nil {
			t.lg.Debug("writing to a peer host", zap.Uint64("peer", p.id), zap.Error(err))
			_ = conn.Close()
			conn = nil
			t.unreachable(p.id)
		}
		recycleItems(b.Items) // written or lost: nothing refers to them
	}
}

// drainInto merges the batches waiting in q into b, without blocking.
func drainInto(b Batch, q chan Batch) Batch {
	for {
		select {
		case more := <-q:
			b.Items = append(b.Items, more.Items...)
			recycleItems(more.Items) // copied into b
			b.Heartbeats = append(b.Heartbeats, more.Heartbeats...)
			b.HeartbeatResps = append(b.HeartbeatResps, more.HeartbeatResps...)
		default:
			return b
		}
	}
}

// writeBatch writes b to conn as one frame or, when the merged batch is
// over the frame limit, as several: a merge of batches that each fit must
// not cost all of them. Only an item that cannot fit any frame on its own
// is dropped (raft resends, or catches the member up another way), with a
// log line and Traffic's dropped count.
func (t *NetTransport) writeBatch(conn net.Conn, b *Batch, buf, frame []byte) ([]byte, []byte, error) {
	buf, err := AppendBatch(buf, b)
	if err != nil {
		return buf, frame, err
	}
	if uint64(len(buf)) <= uint64(t.cfg.Stream.MaxFrameSize) {
		return buf, frame, t.writeFrame(conn, buf, &frame)
	}
	for _, part := range splitBatch(b, int(t.cfg.Stream.MaxFrameSize)) {
		if len(part.Items) == 1 && encodedItemMax(&part.Items[0])+batchHeaderMax > int(t.cfg.Stream.MaxFrameSize) {
			it := &part.Items[0]
			t.dropped.Add(1)
			t.lg.Warn("dropped a message larger than the frame limit",
				zap.Uint64("group", uint64(it.Group)), zap.Stringer("type", it.Msg.Type),
				zap.Int("bytes", it.Msg.Size()), zap.Uint32("limit", t.cfg.Stream.MaxFrameSize))
			continue
		}
		if buf, err = AppendBatch(buf[:0], &part); err != nil {
			return buf, frame, err
		}
		if err := t.writeFrame(conn, buf, &frame); err != nil {
			return buf, frame, err
		}
	}
	return buf, frame, nil
}

// writeFrame frames payload (within the limit) into *frame and writes it.
func (t *NetTransport) writeFrame(conn net.Conn, payload []byte, frame *[]byte) error {
	f, err := transport.AppendFrame((*frame)[:0], payload, t.cfg.Stream.MaxFrameSize)
	*frame = f
	if err != nil {
		return err // not reached: callers check the size
	}
	_ = conn.SetWriteDeadline(time.Now().Add(t.cfg.Stream.IOTimeout + time.Second))
	if _, err := conn.Write(f); err != nil {
		return err
	}
	t.framesOut.Add(1)
	t.bytesOut.Add(uint64(len(f)))
	return nil
}

// batchHeaderMax bounds the encoding of a batch's header: the version byte
// and two uvarints (sender, item count).
const batchHeaderMax = 1 + 2*binary.MaxVarintLen64

// encodedItemMax bounds the encoding of one item in a batch: its group
// (uvarint), kind byte, length (uvarint) and message.
func encodedItemMax(it *Item) int {
	return 2*binary.MaxVarintLen64 + 1 + it.Msg.Size()
}

// splitBatch cuts b into batches whose encodings fit limit bytes, keeping
// the items' order (raft needs none across frames, but keeping it costs
// nothing), its coalesced heartbeats in batches after them. An item too
// large for any frame is a batch of its own.
func splitBatch(b *Batch, limit int) []Batch {
	var parts []Batch
	start, size := 0, batchHeaderMax
	for i := range b.Items {
		n := encodedItemMax(&b.Items[i])
		if i > start && size+n > limit {
			parts = append(parts, Batch{From: b.From, Items: b.Items[start:i]})
			start, size = i, batchHeaderMax
		}
		size += n
	}
	if start < len(b.Items) {
		parts = append(parts, Batch{From: b.From, Items: b.Items[start:]})
	}
	return append(parts, splitHeartbeats(b, limit)...)
}

// splitHeartbeats cuts b's coalesced heartbeats into batches of their own
// whose encodings fit limit bytes.
func splitHeartbeats(b *Batch, limit int) []Batch {
	per := max(1, (limit-batchHeaderMax-heartbeatsMax(&Batch{}))/(3*binary.MaxVarintLen64))
	var parts []Batch
	for hbs := b.Heartbeats; len(hbs) > 0; {
		n := min(per, len(hbs))
		parts = append(parts, Batch{From: b.From, Heartbeats: hbs[:n]})
		hbs = hbs[n:]
	}
	for hbs := b.HeartbeatResps; len(hbs) > 0; {
		n := min(per, len(hbs))
		parts = append(parts, Batch{From: b.From, HeartbeatResps: hbs[:n]})
		hbs = hbs[n:]
	}
	return parts
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-tm.C:
		return true
	}
}

func (t *NetTransport) acceptLoop() {
	defer t.wg.Done()
	for {
		c, err := t.ln.Accept()
		if err != nil {
			if t.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			if !sleepCtx(t.ctx, 50*time.Millisecond) {
				return
			}
			continue
		}
		t.mu.Lock()
		t.inbound[c] = struct{}{}
		t.mu.Unlock()
		if t.ctx.Err() != nil { // Close ran meanwhile and missed c
			_ = c.Close()
		}
		t.wg.Add(1)
		go t.readLoop(c)
	}
}

// unreachable passes a broken stream or a failed dial to peer host id on
// to the host (Host.PeerUnreachable), unless the transport is closing.
func (t *NetTransport) unreachable(id HostID) {
	if t.ctx.Err() != nil {
		return
	}
	t.mu.Lock()
	h := t.host
	t.mu.Unlock()
	if h != nil {
		h.PeerUnreachable(id)
	}
}

func (t *NetTransport) knownPeer(id uint64) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	_, ok := t.peers[id]
	return ok
}

// inboundBuffer is the read buffer of an inbound stream: room for the
// frames of a busy round (larger frames are read past it, straight into
// their payload buffer).
const inboundBuffer = 32 << 10

// readLoop serves one inbound stream: the handshake, then frames, each a
// batch handed to the host, or, when the first frame opens a snapshot, that
// one snapshot (serveSnapshot). A malformed batch is dropped with a log line;
// a frame over the limit or a batch claiming another sender ends the
// stream (the sender redials).
func (t *NetTransport) readLoop(c net.Conn) {
	defer t.wg.Done()
	defer func() {
		t.mu.Lock()
		delete(t.inbound, c)
		t.mu.Unlock()
		_ = c.Close()
	}()
	from, conn, err := transport.AcceptBatchStream(t.ctx, c, t.cfg.Stream, t.knownPeer)
	if err != nil {
		t.lg.Warn("refused an inbound batch stream", zap.Error(err))
		return
	}
	// Frames are read through a buffer: a frame's length prefix and its
	// payload (and often the frames queued behind it) then cost one read
	// from the socket, not two.
	br := bufio.NewReaderSize(conn, inboundBuffer)
	var buf []byte
	for first := true; ; first = false {
		payload, err := transport.ReadFrame(br, t.cfg.Stream.MaxFrameSize, buf)
		if err != nil {
			// The peer's process or network went away (or the peer
			// redials, which the next batch shows).
			t.unreachable(HostID(from))
			return
		}
		if first && isSnapHeader(payload) {
			t.serveSnapshot(conn, br, from, payload)
			return
		}
		buf = payload[:0]
		b, err := DecodeBatch(payload)
		if err != nil {
			t.lg.Warn("dropped a malformed batch", zap.Uint64("peer", from), zap.Error(err))
			continue
		}
		if b.From != from {
			t.lg.Warn("batch from another host than the stream's", zap.Uint64("peer", from), zap.Uint64("claimed", b.From))
			return
		}
		t.mu.Lock()
		h := t.host
		t.mu.Unlock()
		if h != nil {
			h.Receive(b)
		}
		recycleItems(b.Items) // Receive copied what it keeps
	}
}
