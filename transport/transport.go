package transport

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/raftkit/raft/raftpb"
)

// ErrClosed is returned by AddPeer after Close.
var ErrClosed = errors.New("transport: closed")

// ErrInvalidPeer is returned by AddPeer for a zero ID, the local ID, or an
// ID that is already a peer at another address.
var ErrInvalidPeer = errors.New("transport: invalid peer")

// Transport carries raft messages between the members of one cluster over
// TCP (optionally TLS). Each member runs one Transport: it accepts streams
// from its peers and dials its own streams to them, one long-lived message
// stream per peer and one short-lived connection per snapshot.
//
// All methods are safe for concurrent use.
type Transport struct {
	cfg Config
	lg  *zap.Logger
	ln  net.Listener

	// ctx is cancelled by Close; every goroutine of the transport watches
	// it, and wg counts them all.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.RWMutex
	closed bool
	peers  map[uint64]*peer
	// inbound holds the accepted connections past their handshake, so
	// that RemovePeer and Close can cut them.
	inbound map[net.Conn]inboundInfo

	handshakesRefused atomic.Uint64
	streamErrors      atomic.Uint64
	unknownPeerDrops  atomic.Uint64
}

type inboundInfo struct {
	from uint64
	kind streamKind
}

// memberID prints a member ID the way etcd does, in hexadecimal.
type memberID uint64

func (id memberID) String() string { return strconv.FormatUint(uint64(id), 16) }

// New validates cfg, starts listening on cfg.ListenAddr and returns a
// transport with no peers yet. The caller must Close it.
func New(cfg Config) (*Transport, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.ListenAddr)
	if err != nil {
		return nil, fmt.Errorf("transport: listening on %s: %w", cfg.ListenAddr, err)
	}
	t := &Transport{
		cfg:     cfg,
		lg:      cfg.Logger.With(zap.Stringer("local-member-id", memberID(cfg.ID))),
		ln:      ln,
		peers:   make(map[uint64]*peer),
		inbound: make(map[net.Conn]inboundInfo),
	}
	t.ctx, t.cancel = context.WithCancel(context.Background())
	t.wg.Add(1)
	go t.acceptLoop()
	t.lg.Info("transport listening", zap.Stringer("addr", ln.Addr()),
		zap.Bool("tls", cfg.ServerTLS != nil))
	return t, nil
}

// Addr returns the address the transport accepts streams on (with the port
// chosen by the system when ListenAddr asked for port 0).
func (t *Transport) Addr() net.Addr { return t.ln.Addr() }

// AddPeer makes id a member the transport talks to, reachable at addr
// ("host:port"). Streams from id are accepted from now on, and a stream to
// it is dialed in the background. Adding a peer again with the same address
// does nothing; with another address it is an error (RemovePeer first).
func (t *Transport) AddPeer(id uint64, addr string) error {
	if id == 0 || id == t.cfg.ID {
		return fmt.Errorf("%w: ID %s", ErrInvalidPeer, memberID(id))
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return ErrClosed
	}
	if p, ok := t.peers[id]; ok {
		if p.addr == addr {
			return nil
		}
		return fmt.Errorf("%w: %s is already a peer at %s, not %s", ErrInvalidPeer, memberID(id), p.addr, addr)
	}
	p := newPeer(t, id, addr)
	t.peers[id] = p
	t.wg.Add(2)
	go p.run()
	go p.reportLoop()
	t.lg.Info("added peer", zap.Stringer("peer-id", memberID(id)), zap.String("addr", addr))
	return nil
}

// RemovePeer forgets id: its queued messages are dropped, its streams (both
// directions) are closed, and from now on its streams are refused as coming
// from an unknown member. Removing an unknown ID does nothing. RemovePeer
// does not wait for the peer's goroutines to finish (Close does).
func (t *Transport) RemovePeer(id uint64) {
	t.mu.Lock()
	p, ok := t.peers[id]
	if !ok {
		t.mu.Unlock()
		return
	}
	delete(t.peers, id)
	conns := t.inboundFromLocked(id, 0)
	t.mu.Unlock()

	p.cancel()
	for _, c := range conns {
		_ = c.Close()
	}
	t.lg.Info("removed peer", zap.Stringer("peer-id", memberID(id)))
}

// Send queues msgs for their recipients (m.To) and returns at once: it never
// blocks on the network or on a slow peer, so it may be called from the
// Ready loop. A message for a peer whose queue is full is dropped and the
// peer is reported unreachable (asynchronously, through Raft). A MsgSnap is
// sent on a connection of its own, and its outcome reported through
// Raft.ReportSnapshot. Messages for unknown IDs are dropped and counted.
//
// Send reads the messages but does not modify them; they must not be
// modified while queued (raft never modifies what a Ready handed out).
func (t *Transport) Send(msgs []raftpb.Message) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.closed {
		return
	}
	for i := range msgs {
		m := &msgs[i]
		p, ok := t.peers[m.To]
		if !ok {
			t.unknownPeerDrops.Add(1)
			t.lg.Debug("dropped message for unknown peer",
				zap.Stringer("peer-id", memberID(m.To)), zap.Stringer("type", m.Type))
			continue
		}
		if m.Type == raftpb.MsgSnap {
			p.sendSnapshot(*m)
			continue
		}
		p.enqueue(*m)
	}
}

// Stats returns a copy of the transport's counters.
func (t *Transport) Stats() Stats {
	t.mu.RLock()
	peers := make(map[uint64]PeerStats, len(t.peers))
	for id, p := range t.peers {
		peers[id] = p.stats.snapshot()
	}
	t.mu.RUnlock()
	return Stats{
		Peers:             peers,
		HandshakesRefused: t.handshakesRefused.Load(),
		StreamErrors:      t.streamErrors.Load(),
		UnknownPeerDrops:  t.unknownPeerDrops.Load(),
	}
}

// Close stops accepting streams, closes every connection, drops what is
// queued and waits for the transport's goroutines, including any Raft
// callback in progress (Process gets a cancelled context). Closing twice
// is harmless.
func (t *Transport) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	peers := t.peers
	t.peers = make(map[uint64]*peer)
	conns := t.inboundFromLocked(0, 0)
	t.mu.Unlock()

	t.cancel()
	err := t.ln.Close()
	for _, p := range peers {
		p.cancel()
	}
	for _, c := range conns {
		_ = c.Close()
	}
	t.wg.Wait()
	t.lg.Info("transport closed")
	if err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("transport: closing listener: %w", err)
	}
	return nil
}

// inboundFromLocked lists the registered inbound connections from one peer
// (from 0: all peers) of one kind (0: all kinds). t.mu must be held.
func (t *Transport) inboundFromLocked(from uint64, kind streamKind) []net.Conn {
	var out []net.Conn
	for c, info := range t.inbound {
		if (from == 0 || info.from == from) && (kind == 0 || info.kind == kind) {
			out = append(out, c)
		}
	}
	return out
}

func (t *Transport) acceptLoop() {
	defer t.wg.Done()
	for {
		c, err := t.ln.Accept()
		if err != nil {
			if t.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of descriptors and the like: pause rather than spin.
			t.lg.Warn("accept failed", zap.Error(err))
			select {
			case <-time.After(50 * time.Millisecond):
				continue
			case <-t.ctx.Done():
				return
			}
		}
		t.wg.Add(1)
		go t.serve(c)
	}
}

// serve runs one accepted connection: TLS (if configured), the handshake,
// then the stream the dialer asked for.
func (t *Transport) serve(c net.Conn) {
	defer t.wg.Done()
	defer c.Close()
	lg := t.lg.With(zap.Stringer("remote-addr", c.RemoteAddr()))
	_ = c.SetDeadline(time.Now().Add(t.cfg.IOTimeout))
	if t.cfg.ServerTLS != nil {
		tc := tls.Server(c, t.cfg.ServerTLS)
		if err := tc.HandshakeContext(t.ctx); err != nil {
			t.handshakesRefused.Add(1)
			lg.Warn("refused inbound connection: TLS handshake failed", zap.Error(err))
			return
		}
		c = tc
	}
	h, err := readHandshake(c)
	if err != nil {
		t.handshakesRefused.Add(1)
		lg.Warn("refused inbound connection: bad handshake", zap.Error(err))
		return
	}
	lg = lg.With(zap.Stringer("remote-member-id", memberID(h.from)), zap.Stringer("stream", h.kind))
	p, detail, sentinel := t.admit(c, h)
	if sentinel != nil {
		t.handshakesRefused.Add(1)
		lg.Warn("refused inbound stream", zap.Error(fmt.Errorf("%w: %s", sentinel, detail)))
		_, _ = c.Write(encodeReply(sentinel, detail))
		return
	}
	defer t.unregister(c)
	if _, err := c.Write(encodeReply(nil, "")); err != nil {
		lg.Warn("inbound stream failed before it started", zap.Error(err))
		return
	}
	_ = c.SetDeadline(time.Time{})
	switch h.kind {
	case kindMessages:
		lg.Info("accepted message stream")
		t.readMessages(c, h, p, lg)
	case kindSnapshot:
		t.receiveSnapshot(c, h, p, lg)
	}
}

// admit decides whether a hello is welcome and, if so, registers c as an
// inbound stream from its sender. A new message stream from a peer replaces
// the previous one (the peer redialed; the old connection is dead or about
// to be). It returns the refusal's sentinel error and detail otherwise.
func (t *Transport) admit(c net.Conn, h handshake) (p *peer, detail string, refusal error) {
	if h.version != ProtocolVersion {
		return nil, fmt.Sprintf("version %d spoken here, %d offered", ProtocolVersion, h.version), ErrVersionMismatch
	}
	if h.clusterID != t.cfg.ClusterID {
		return nil, fmt.Sprintf("local cluster %s, remote cluster %s",
			memberID(t.cfg.ClusterID), memberID(h.clusterID)), ErrClusterIDMismatch
	}
	if h.to != t.cfg.ID {
		return nil, fmt.Sprintf("stream for member %s reached member %s",
			memberID(h.to), memberID(t.cfg.ID)), ErrWrongReceiver
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	p, ok := t.peers[h.from]
	if !ok || t.closed {
		return nil, fmt.Sprintf("member %s is not a peer of member %s",
			memberID(h.from), memberID(t.cfg.ID)), ErrUnknownMember
	}
	if h.kind == kindMessages {
		for _, old := range t.inboundFromLocked(h.from, kindMessages) {
			_ = old.Close()
			delete(t.inbound, old)
		}
	}
	t.inbound[c] = inboundInfo{from: h.from, kind: h.kind}
	return p, "", nil
}

func (t *Transport) unregister(c net.Conn) {
	t.mu.Lock()
	delete(t.inbound, c)
	t.mu.Unlock()
}

// readMessages hands the messages of one inbound stream to Raft.Process, in
// order, until the stream ends or breaks the protocol.
func (t *Transport) readMessages(c net.Conn, h handshake, p *peer, lg *zap.Logger) {
	br := bufio.NewReaderSize(c, 64<<10)
	var buf []byte
	var dec decoder
	for {
		payload, err := readFrame(br, t.cfg.MaxMessageSize, buf)
		if err != nil {
			t.endInbound(err, lg)
			return
		}
		buf = payload[:0]
		var m raftpb.Message
		if err := dec.decode(payload, &m); err != nil {
			t.streamErrors.Add(1)
			lg.Error("dropping inbound stream: undecodable message", zap.Error(err))
			return
		}
		if !t.senderMatches(m, h) || m.To != t.cfg.ID {
			t.streamErrors.Add(1)
			lg.Error("dropping inbound stream: message not from the stream's sender or not for this member",
				zap.Stringer("from", memberID(m.From)), zap.Stringer("to", memberID(m.To)))
			return
		}
		p.stats.msgsReceived.Add(1)
		if err := t.cfg.Raft.Process(t.ctx, m); err != nil {
			lg.Warn("raft refused a message", zap.Stringer("type", m.Type), zap.Error(err))
			if t.ctx.Err() != nil {
				return
			}
		}
	}
}

// senderMatches reports whether m may arrive on a stream opened by h.from.
// Every message names the stream's sender as From, except MsgTransferLeader:
// a follower relays a transfer request to the leader unchanged, and raft
// reads the transferee from its From field. Such a relay is accepted when
// From is a member this transport knows (or this member itself).
func (t *Transport) senderMatches(m raftpb.Message, h handshake) bool {
	if m.From == h.from {
		return true
	}
	if m.Type != raftpb.MsgTransferLeader {
		return false
	}
	if m.From == t.cfg.ID {
		return true
	}
	t.mu.RLock()
	_, known := t.peers[m.From]
	t.mu.RUnlock()
	return known
}

// endInbound logs why an inbound message stream ended.
func (t *Transport) endInbound(err error, lg *zap.Logger) {
	switch {
	case errors.Is(err, ErrFrameTooLarge):
		t.streamErrors.Add(1)
		lg.Error("dropping inbound stream: oversized frame", zap.Error(err))
	case t.ctx.Err() != nil || errors.Is(err, net.ErrClosed):
		lg.Debug("inbound stream closed locally")
	case errors.Is(err, io.EOF):
		lg.Info("inbound stream closed by peer")
	default:
		lg.Warn("inbound stream broke", zap.Error(err))
	}
}

// peerRand gives each peer its own jitter source, derived from the seed so
// that tests with a fixed seed see fixed delays.
func (t *Transport) peerRand(id uint64) *rand.Rand {
	return rand.New(rand.NewSource(t.cfg.RandSeed ^ int64(id*0x9e3779b97f4a7c15)))
}
