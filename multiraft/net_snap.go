package multiraft

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"go.uber.org/zap"

	"github.com/raftkit/raft"
	"github.com/raftkit/raft/raftpb"
	"github.com/raftkit/raft/transport"
)

// NetTransport's snapshot streams (see snapstream.go): each on a
// connection of its own, dialed with the batch stream's handshake and TLS,
// at most SnapshotStreamsPerPeer at a time per peer and direction.

const (
	defaultSnapshotChunkSize = 1 << 20
	defaultSnapshotStreams   = 2
	defaultMaxSnapshotSize   = 64 << 30
	// snapAnswerWait is how long a sender waits for the receiver's answer
	// after the end frame, beyond IOTimeout: the receiver makes the data
	// durable (an fsync of the whole snapshot) before it answers.
	snapAnswerWait = time.Minute
)

// Refusals of a receiver that takes no stream now.
var (
	errNoSnapshots   = fmt.Errorf("%w: snapshots are not streamed to this host", ErrSnapshotStream)
	errSnapshotsBusy = errors.New("multiraft: the peer's snapshot streams to this host are at their limit")
)

func (c NetConfig) snapshotDefaults() NetConfig {
	if c.SnapshotChunkSize <= 0 {
		c.SnapshotChunkSize = defaultSnapshotChunkSize
	}
	c.SnapshotChunkSize = min(c.SnapshotChunkSize, int(c.Stream.MaxFrameSize)-1)
	if c.SnapshotStreamsPerPeer <= 0 {
		c.SnapshotStreamsPerPeer = defaultSnapshotStreams
	}
	if c.MaxSnapshotSize == 0 {
		c.MaxSnapshotSize = defaultMaxSnapshotSize
	}
	return c
}

// StreamsSnapshots implements SnapshotTransport: true with Snapshots.
func (t *NetTransport) StreamsSnapshots() bool { return t.cfg.Snapshots != nil }

func (t *NetTransport) ioTimeout() time.Duration {
	if d := t.cfg.Stream.IOTimeout; d > 0 {
		return d
	}
	return transport.DefaultIOTimeout
}

// divertSnapshots starts a stream for each MsgSnap of b (to peer p, nil if
// unknown) and returns b without them.
func (t *NetTransport) divertSnapshots(to HostID, p *netPeer, b Batch) Batch {
	n := 0
	for i := range b.Items {
		if isSnapItem(&b.Items[i]) {
			n++
		}
	}
	if n == 0 {
		return b
	}
	rest := make([]Item, 0, len(b.Items)-n)
	for _, it := range b.Items {
		if isSnapItem(&it) {
			t.startSnapshot(to, p, it)
		} else {
			rest = append(rest, it)
		}
	}
	b.Items = rest
	return b
}

func isSnapItem(it *Item) bool { return it.Kind == KindRaft && it.Msg.Type == raftpb.MsgSnap }

// startSnapshot streams it to p in the background, or fails it at once
// when p is unknown, the transport closed, p has its streams' worth or the
// follower's last streams failed (snapretry.go).
func (t *NetTransport) startSnapshot(to HostID, p *netPeer, it Item) {
	if p == nil {
		t.dropped.Add(1)
		t.report(it, to, raft.SnapshotFailure)
		return
	}
	key := snapKey{from: t.cfg.Stream.ID, to: to, g: it.Group}
	if t.snaps.hold(t.served(), key, t.cfg.Snapshots) {
		t.lg.Debug("deferred a snapshot to a follower whose last streams failed", zap.Uint64("peer", to),
			zap.Uint64("group", uint64(it.Group)))
		t.report(it, to, raft.SnapshotFailure)
		return
	}
	select {
	case p.snaps <- struct{}{}:
	default:
		t.lg.Info("snapshot streams to the peer at their limit; failing one", zap.Uint64("peer", to),
			zap.Uint64("group", uint64(it.Group)))
		t.report(it, to, raft.SnapshotFailure)
		return
	}
	t.mu.Lock()
	open := t.ctx.Err() == nil // Close cancels before it waits: Add is safe
	if open {
		t.wg.Add(1)
	}
	t.mu.Unlock()
	if !open {
		<-p.snaps
		return
	}
	go t.runSnapshot(p, key, it)
}

// runSnapshot streams it to p, holding one of p's stream tokens, and
// reports the outcome, after the backoff noted it.
func (t *NetTransport) runSnapshot(p *netPeer, key snapKey, it Item) {
	defer t.wg.Done()
	defer func() { <-p.snaps }()
	start := time.Now()
	size, err := t.sendSnapshot(p, it)
	h := t.served()
	if p.ctx.Err() != nil {
		h = nil // cut short by RemovePeer or Close: no news of the follower, no backoff
	}
	failures, wait := t.snaps.outcome(h, key, err, t.cfg.Snapshots)
	lg := t.lg.With(zap.Uint64("peer", p.id), zap.Uint64("group", uint64(it.Group)),
		zap.Uint64("index", it.Msg.Snapshot.Metadata.Index), zap.Uint64("bytes", size),
		zap.Duration("took", time.Since(start)))
	if err != nil {
		lg.Warn("sending a snapshot failed", zap.Error(err),
			zap.Int("failures_in_a_row", failures), zap.Int64("next_try_in_ticks", wait))
	} else {
		lg.Info("sent a snapshot")
	}
	t.report(it, p.id, snapStatus(err))
}

// served returns the host Serve handed the transport, or nil.
func (t *NetTransport) served() *Host {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.host
}

// report hands a stream's outcome to the host, if it is still served.
func (t *NetTransport) report(it Item, to HostID, st raft.SnapshotStatus) {
	if h := t.served(); h != nil && t.ctx.Err() == nil {
		h.ReportSnapshot(it.Group, to, st)
	}
}

// SnapshotTraffic returns the counters of the transport's snapshot
// streams (Traffic counts batch frames only).
func (t *NetTransport) SnapshotTraffic() SnapshotTraffic { return t.snaps.traffic() }

// sendSnapshot streams one snapshot and waits for the receiver's answer.
func (t *NetTransport) sendSnapshot(p *netPeer, it Item) (uint64, error) {
	src, err := t.cfg.Snapshots.OpenSnapshot(it.Group, it.Msg)
	if err != nil {
		return 0, err
	}
	defer src.Close()
	conn, err := transport.DialBatchStream(p.ctx, t.cfg.Stream, p.id, p.addr)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	// A removed peer or a closing transport must not wait out a stream.
	stop := context.AfterFunc(p.ctx, func() { _ = conn.Close() })
	defer stop()
	timeout := t.ioTimeout()
	bw := bufio.NewWriterSize(countingWriter{w: conn, n: &t.snaps.bytesOut}, 64<<10)
	deadline := func() { _ = conn.SetWriteDeadline(time.Now().Add(timeout)) }
	size, err := writeSnapStream(bw, it.Group, &it.Msg, src, t.cfg.SnapshotChunkSize, t.cfg.Stream.MaxFrameSize, deadline)
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		return size, err
	}
	_ = conn.SetReadDeadline(time.Now().Add(timeout + snapAnswerWait))
	return size, readSnapReply(conn)
}

// serveSnapshot receives one snapshot stream from peer from, whose header
// frame was hdr, hands the snapshot to the host if it arrived whole, and
// answers the sender. The stream's bytes after hdr come from r (the reader
// that read hdr, which may hold some already), its deadlines and the
// answer go through conn.
func (t *NetTransport) serveSnapshot(conn net.Conn, r io.Reader, from HostID, hdr []byte) {
	t.snaps.bytesIn.Add(uint64(4 + len(hdr))) // the header frame, read by readLoop
	t.mu.Lock()
	h := t.host
	busy := t.snapsIn[from] >= t.cfg.SnapshotStreamsPerPeer
	if !busy {
		t.snapsIn[from]++
	}
	t.mu.Unlock()
	var err error
	var it Item
	switch {
	case t.cfg.Snapshots == nil || h == nil:
		err = errNoSnapshots
	case busy:
		err = errSnapshotsBusy
	default:
		defer func() {
			t.mu.Lock()
			t.snapsIn[from]--
			t.mu.Unlock()
		}()
		timeout := t.ioTimeout()
		rc := &snapReceiver{self: t.cfg.Stream.ID, from: from, maxSize: t.cfg.MaxSnapshotSize,
			maxFrame: t.cfg.Stream.MaxFrameSize, streams: t.cfg.Snapshots, known: h.hasGroup,
			before: func() { _ = conn.SetReadDeadline(time.Now().Add(timeout)) }}
		it, err = rc.receive(bufio.NewReaderSize(countingReader{r: r, n: &t.snaps.bytesIn}, 64<<10), hdr)
	}
	if err != nil {
		t.snaps.refused.Add(1)
		t.lg.Warn("refused an inbound snapshot", zap.Uint64("peer", from), zap.Error(err))
	} else {
		t.snaps.received.Add(1)
		h.Receive(Batch{From: from, Items: []Item{it}})
		t.lg.Info("received a snapshot", zap.Uint64("peer", from), zap.Uint64("group", uint64(it.Group)),
			zap.Uint64("index", it.Msg.Snapshot.Metadata.Index))
	}
	_ = conn.SetWriteDeadline(time.Now().Add(t.ioTimeout()))
	_ = writeFrameTo(conn, encodeSnapReply(err))
}
