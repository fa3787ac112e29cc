package transport

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"net"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/raftkit/raft/raftpb"
)

// maxBatch bounds how many queued messages are written before a flush, so
// that one busy peer's stream gets flushed (and its deadline renewed)
// regularly.
const maxBatch = 512

// errStreamClosedByPeer ends an outgoing stream whose connection the peer
// closed (it restarted, removed us, or refused a frame).
var errStreamClosedByPeer = errors.New("transport: stream closed by peer")

// peer is the sending side of the transport for one remote member: a bounded
// queue drained by one goroutine that keeps a message stream dialed, and a
// second goroutine that relays unreachable reports to raft so that Send never
// waits for raft.
type peer struct {
	t    *Transport
	id   uint64
	addr string
	lg   *zap.Logger

	// ctx is cancelled when the peer is removed or the transport closes.
	ctx    context.Context
	cancel context.CancelFunc

	queue *msgQueue
	// unreachable holds at most one pending report: drops that happen
	// while a report is pending add nothing raft does not already know.
	unreachable chan struct{}
	// dropping is set on the first drop of an episode and cleared by a
	// successful write, so that a down peer costs one log line, not one
	// per message.
	dropping atomic.Bool

	// rnd is used only by run's goroutine.
	rnd   *rand.Rand
	stats peerCounters
}

func newPeer(t *Transport, id uint64, addr string) *peer {
	p := &peer{
		t:           t,
		id:          id,
		addr:        addr,
		lg:          t.lg.With(zap.Stringer("peer-id", memberID(id))),
		queue:       newMsgQueue(t.cfg.QueueSize),
		unreachable: make(chan struct{}, 1),
		rnd:         t.peerRand(id),
	}
	p.ctx, p.cancel = context.WithCancel(t.ctx)
	return p
}

// enqueue queues m without blocking, dropping it if the queue is full.
func (p *peer) enqueue(m raftpb.Message) {
	if !p.queue.push(m) {
		p.stats.queueDrops.Add(1)
		p.drop(1, "send queue full")
	}
}

// drop accounts for n messages that will never be written and tells raft.
func (p *peer) drop(n int, why string) {
	if n > 0 {
		p.stats.msgsDropped.Add(uint64(n))
	}
	if n > 0 && !p.dropping.Swap(true) {
		p.lg.Warn("dropping messages to peer", zap.String("reason", why))
	}
	p.reportUnreachable()
}

func (p *peer) reportUnreachable() {
	select {
	case p.unreachable <- struct{}{}:
	default:
	}
}

// reportLoop relays unreachable signals to raft from its own goroutine.
func (p *peer) reportLoop() {
	defer p.t.wg.Done()
	for {
		select {
		case <-p.unreachable:
			p.t.cfg.Raft.ReportUnreachable(p.id)
		case <-p.ctx.Done():
			return
		}
	}
}

// run keeps a message stream to the peer: dial, write until the stream
// breaks, wait, redial. While no stream is up, queued messages are dropped
// rather than kept: raft resends what matters, and stale heartbeats and
// appends delivered late would only be rejected.
func (p *peer) run() {
	defer p.t.wg.Done()
	failures := 0
	for {
		conn, err := p.dial(kindMessages)
		if err != nil {
			if p.ctx.Err() != nil {
				return
			}
			p.stats.dialFailures.Add(1)
			if failures == 0 {
				p.lg.Warn("cannot reach peer", zap.String("addr", p.addr), zap.Error(err))
			} else {
				p.lg.Debug("cannot reach peer", zap.String("addr", p.addr), zap.Int("failures", failures+1), zap.Error(err))
			}
			p.drop(p.discardQueued(), "peer unreachable")
			if !p.pause(p.t.cfg.Backoff.Delay(failures, p.rnd.Float64())) {
				return
			}
			failures++
			continue
		}
		failures = 0
		if p.stats.connects.Add(1) > 1 {
			p.stats.reconnects.Add(1)
		}
		p.lg.Info("established message stream to peer", zap.String("addr", p.addr))
		err = p.stream(conn)
		if p.ctx.Err() != nil {
			return
		}
		p.lg.Warn("message stream to peer broke", zap.Error(err))
		p.reportUnreachable()
		// A peer that accepts and then drops every stream must not make us
		// spin; the first backoff step is short.
		if !p.pause(p.t.cfg.Backoff.Delay(0, p.rnd.Float64())) {
			return
		}
	}
}

// discardQueued empties the queue and returns how many messages it held.
func (p *peer) discardQueued() int { return p.queue.discard() }

// pause waits d on the configured clock, dropping whatever gets queued
// meanwhile. It returns false if the peer was removed or the transport
// closed.
func (p *peer) pause(d time.Duration) bool {
	timer := p.t.cfg.Clock.After(d)
	for {
		select {
		case <-timer:
			return true
		case <-p.queue.ready:
			p.drop(p.discardQueued(), "peer unreachable")
		case <-p.ctx.Done():
			return false
		}
	}
}

// dial connects to the peer, secures the connection if configured, and
// performs the handshake for a stream of the given kind. The returned
// connection has no deadline set.
func (p *peer) dial(kind streamKind) (net.Conn, error) {
	cfg := &p.t.cfg
	d := net.Dialer{Timeout: cfg.IOTimeout}
	c, err := d.DialContext(p.ctx, "tcp", p.addr)
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			_ = c.Close()
		}
	}()
	// RemovePeer and Close end the handshake too, not only the dial: a
	// peer that accepts and never answers would otherwise hold them (Close
	// waits for this goroutine) for IOTimeout.
	raw := c
	stop := context.AfterFunc(p.ctx, func() { _ = raw.Close() })
	defer stop()
	_ = c.SetDeadline(time.Now().Add(cfg.IOTimeout))
	if cfg.ClientTLS != nil {
		tc := tls.Client(c, p.clientTLS())
		if err := tc.HandshakeContext(p.ctx); err != nil {
			return nil, fmt.Errorf("TLS handshake with %s: %w", p.addr, err)
		}
		c = tc
	}
	if cfg.wrapConn != nil {
		c = cfg.wrapConn(kind, p.id, c)
	}
	hello := handshake{version: ProtocolVersion, kind: kind, clusterID: cfg.ClusterID, from: cfg.ID, to: p.id}
	if _, err := c.Write(hello.encode()); err != nil {
		return nil, fmt.Errorf("sending handshake to %s: %w", p.addr, err)
	}
	if err := readReply(c); err != nil {
		return nil, err
	}
	if !stop() { // the context ended as the handshake did: c is closed
		return nil, p.ctx.Err()
	}
	_ = c.SetDeadline(time.Time{})
	ok = true
	return c, nil
}

func (p *peer) clientTLS() *tls.Config {
	c := p.t.cfg.ClientTLS.Clone()
	if c.ServerName == "" {
		if host, _, err := net.SplitHostPort(p.addr); err == nil {
			c.ServerName = host
		}
	}
	return c
}

// stream writes queued messages to conn until the stream breaks or the peer
// goes away; it always closes conn. Nothing is ever read from a message
// stream, so a watcher goroutine reading it learns at once when the peer
// closes its end, instead of at the next write.
func (p *peer) stream(conn net.Conn) error {
	closedByPeer := make(chan struct{})
	watcherDone := make(chan struct{})
	go func() {
		defer close(watcherDone)
		_, _ = io.Copy(io.Discard, conn)
		close(closedByPeer)
	}()
	stop := context.AfterFunc(p.ctx, func() { _ = conn.Close() })
	defer func() {
		stop()
		_ = conn.Close()
		<-watcherDone
	}()

	bw := bufio.NewWriterSize(conn, 64<<10)
	var buf []byte
	var batch []raftpb.Message
	for {
		select {
		case <-p.queue.ready:
		case <-closedByPeer:
			return errStreamClosedByPeer
		case <-p.ctx.Done():
			return p.ctx.Err()
		}
		// Write until the queue is found empty, flushing every maxBatch
		// messages and at the end.
		for {
			batch = p.queue.take(batch)
			if len(batch) == 0 {
				break
			}
			var err error
			var unwritten int
			buf, unwritten, err = p.writeBatch(conn, bw, buf, batch)
			batch = recycle(batch)
			if err != nil {
				// What was buffered may or may not have left; raft
				// hears of the break through the unreachable report
				// run makes. The batch's unwritten rest is dropped,
				// as the queue's rest will be.
				p.drop(unwritten, "stream broke")
				return err
			}
		}
	}
}

// writeBatch writes msgs to conn through bw in groups of maxBatch, each
// under a fresh write deadline and flushed. On error it also returns how
// many messages were never handed to bw.
func (p *peer) writeBatch(conn net.Conn, bw *bufio.Writer, buf []byte, msgs []raftpb.Message) ([]byte, int, error) {
	for len(msgs) > 0 {
		n := min(len(msgs), maxBatch)
		_ = conn.SetWriteDeadline(time.Now().Add(p.t.cfg.IOTimeout))
		var err error
		k := 0
		for ; k < n && err == nil; k++ {
			buf, err = p.writeMessage(bw, buf, &msgs[k])
		}
		if err == nil {
			err = bw.Flush()
		}
		if err != nil {
			return buf, len(msgs) - k, err
		}
		msgs = msgs[n:]
	}
	return buf, 0, nil
}

// writeMessage frames m into bw through the scratch buffer buf (returned for
// reuse). A message too large to send is dropped here, which is not a stream
// error.
func (p *peer) writeMessage(bw *bufio.Writer, buf []byte, m *raftpb.Message) ([]byte, error) {
	size := m.Size()
	if uint64(size) > uint64(p.t.cfg.MaxMessageSize) {
		p.lg.Error("dropping message to peer", zap.Stringer("type", m.Type),
			zap.Error(fmt.Errorf("%w: message of %d bytes, limit %d", ErrFrameTooLarge, size, p.t.cfg.MaxMessageSize)))
		p.drop(1, "message too large")
		return buf, nil
	}
	need := frameHeaderLen + size
	if cap(buf) < need {
		buf = make([]byte, need)
	}
	buf = buf[:need]
	binary.BigEndian.PutUint32(buf, uint32(size))
	if _, err := m.MarshalTo(buf[frameHeaderLen:]); err != nil {
		// Size and MarshalTo disagreeing is a bug in the generated code.
		panic(fmt.Sprintf("transport: marshaling a %s of computed size %d: %v", m.Type, size, err))
	}
	// Counted before the write so that a peer's receipt never precedes
	// the sender's count.
	p.stats.msgsSent.Add(1)
	if p.dropping.Load() {
		p.dropping.Store(false)
	}
	_, err := bw.Write(buf)
	return buf, err
}
