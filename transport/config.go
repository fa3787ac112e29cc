package transport

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"time"

	"go.uber.org/zap"

	"github.com/raftkit/raft"
	"github.com/raftkit/raft/raftpb"
)

// Raft is what the application gives the transport to hand it what arrives
// and to hear about what could not be delivered. A raft.Node satisfies it
// through a thin adapter (Process calls Node.Step).
//
// The transport calls these methods from its own goroutines, never from
// inside Send, so they may block briefly (raft.Node's methods wait for the
// node's goroutine). They must not wait for the goroutine that calls Send,
// RemovePeer or Close, or those calls can deadlock against them.
type Raft interface {
	// Process hands over a message received from a peer. It is called
	// from one goroutine per sending peer, so messages from one peer
	// arrive in the order they were sent; messages from different peers
	// may be processed concurrently. A slow Process slows down its sender
	// (the stream stops being read). ctx is cancelled when the transport
	// closes. An error is logged; the stream goes on.
	Process(ctx context.Context, m raftpb.Message) error
	// ReportUnreachable tells raft that messages to id were dropped (queue
	// full, peer down, stream broken). Repeated drops while a report is
	// pending are folded into one call.
	ReportUnreachable(id uint64)
	// ReportSnapshot tells raft the outcome of sending a MsgSnap to id:
	// raft.SnapshotFinish once the peer acknowledged the whole snapshot,
	// raft.SnapshotFailure otherwise. It is called exactly once per MsgSnap
	// given to Send to a known peer, unless the transport closes first.
	ReportSnapshot(id uint64, status raft.SnapshotStatus)
}

// Config configures a Transport. ClusterID, ID, ListenAddr and Raft are
// required; every other field has a default, applied by New.
type Config struct {
	// ClusterID names the cluster. Streams from a transport with another
	// cluster ID are refused at the handshake, so that two clusters on the
	// same hosts never exchange messages. Must not be zero.
	ClusterID uint64
	// ID is the local member's raft ID. Peers address their streams to it
	// and the handshake refuses streams meant for another ID. Must not be
	// zero.
	ID uint64
	// ListenAddr is the TCP address to accept peer streams on, such as
	// "127.0.0.1:7001"; port 0 picks a free port (see Transport.Addr).
	ListenAddr string
	// Raft receives messages and delivery reports. Required.
	Raft Raft
	// Logger receives structured logs, with the local member ID attached.
	// Default: a no-op logger.
	Logger *zap.Logger

	// MaxMessageSize bounds one encoded message (one frame) in bytes, in
	// both directions: a larger outgoing message is dropped (and reported
	// unreachable), and a larger incoming frame drops the connection.
	// Snapshot data is not counted: it travels in chunks of
	// SnapshotChunkSize. Keep it above raft's Config.MaxSizePerMsg plus
	// headroom for the message envelope. Default: 16 MiB.
	MaxMessageSize uint32
	// QueueSize is the number of messages that may wait to be written to
	// one peer. Send drops messages for a peer whose queue is full, and
	// reports the peer unreachable. Only pending messages take memory; the
	// queue is not allocated up front. Default: 4096.
	QueueSize int
	// IOTimeout bounds each blocking network step: a dial, a handshake, a
	// batch of writes, one snapshot chunk, and the wait for a snapshot's
	// acknowledgement. A peer that accepts no bytes for this long has its
	// stream closed and redialed. Idle incoming message streams have no
	// deadline (a follower may send nothing for a long time); TCP
	// keep-alives find dead ones. Default: 5s.
	IOTimeout time.Duration
	// Backoff spaces out redials to a peer that is down or refusing. A
	// zero Backoff means DefaultBackoff; otherwise zero Initial, Max and
	// Multiplier take DefaultBackoff's values and a zero Jitter means none.
	Backoff Backoff
	// Clock provides the timers that pace redials. Default: the real
	// clock. Tests substitute one that fires on demand.
	Clock Clock
	// RandSeed seeds the jitter added to backoff delays (each peer derives
	// its own generator from it and the peer ID). Zero means seeded from
	// the current time.
	RandSeed int64

	// SnapshotChunkSize is the size of the pieces a snapshot's data is sent
	// in. Must not exceed MaxMessageSize. Default: 1 MiB.
	SnapshotChunkSize uint32
	// MaxSnapshotSize bounds the data of one incoming snapshot, which is
	// assembled in memory before raft sees it (unless Snapshots is set). A
	// stream announcing more is refused. Default: 4 GiB.
	MaxSnapshotSize uint64
	// Snapshots, when set, streams snapshot data from and to the
	// application instead of holding it in raftpb.Snapshot.Data (see
	// SnapshotStreams). Peers of one cluster must agree on it. Default:
	// nil, the data travels in the message.
	Snapshots SnapshotStreams

	// ServerTLS, when set, makes the transport accept only TLS
	// connections. For mutual TLS it must require and verify client
	// certificates (see MutualTLS). ClientTLS, when set, makes the
	// transport dial its peers over TLS; an empty ServerName is filled in
	// with the host part of each peer's address. Set both or neither:
	// peers of one cluster must agree.
	ServerTLS *tls.Config
	ClientTLS *tls.Config

	// wrapConn, in tests, wraps every outgoing connection (after TLS) to
	// inject faults into what this transport writes.
	wrapConn func(kind streamKind, to uint64, c net.Conn) net.Conn
}

// Default values applied by New to zero Config fields.
const (
	DefaultMaxMessageSize    uint32 = 16 << 20
	DefaultQueueSize                = 4096
	DefaultIOTimeout                = 5 * time.Second
	DefaultSnapshotChunkSize uint32 = 1 << 20
	DefaultMaxSnapshotSize   uint64 = 4 << 30
)

// DefaultBackoff is the redial policy used for zero Backoff fields: 50ms,
// doubling up to 5s, each delay spread by ±20%.
var DefaultBackoff = Backoff{
	Initial:    50 * time.Millisecond,
	Max:        5 * time.Second,
	Multiplier: 2,
	Jitter:     0.2,
}

// Backoff is an exponential backoff policy with jitter. The delay before the
// n-th consecutive redial (n from 0) is Initial·Multiplier^n, capped at Max,
// then multiplied by a random factor in [1-Jitter, 1+Jitter] and capped at
// Max again. Jitter keeps the members of a cluster from redialing a
// restarted peer in lockstep.
type Backoff struct {
	Initial    time.Duration
	Max        time.Duration
	Multiplier float64
	// Jitter is the relative spread of each delay, in [0, 1].
	Jitter float64
}

// Delay returns the delay before redial number attempt (from 0), given a
// uniform random number u in [0, 1) for the jitter.
func (b Backoff) Delay(attempt int, u float64) time.Duration {
	d := float64(b.Initial) * math.Pow(b.Multiplier, float64(attempt))
	if d > float64(b.Max) || math.IsInf(d, 0) || math.IsNaN(d) {
		d = float64(b.Max)
	}
	d *= 1 - b.Jitter + 2*b.Jitter*u
	if d > float64(b.Max) {
		d = float64(b.Max)
	}
	return time.Duration(d)
}

func (b Backoff) withDefaults() Backoff {
	if b == (Backoff{}) {
		return DefaultBackoff
	}
	if b.Initial <= 0 {
		b.Initial = DefaultBackoff.Initial
	}
	if b.Max <= 0 {
		b.Max = DefaultBackoff.Max
	}
	if b.Max < b.Initial {
		b.Max = b.Initial
	}
	if b.Multiplier < 1 {
		b.Multiplier = DefaultBackoff.Multiplier
	}
	if b.Jitter < 0 || b.Jitter > 1 {
		b.Jitter = DefaultBackoff.Jitter
	}
	return b
}

// Clock is the source of timers for redial backoff.
type Clock interface {
	// After returns a channel that receives once d has passed.
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// ErrInvalidConfig is returned by New, wrapped with the offending field.
var ErrInvalidConfig = errors.New("transport: invalid config")

// withDefaults validates c and returns a copy with defaults filled in.
func (c Config) withDefaults() (Config, error) {
	switch {
	case c.ClusterID == 0:
		return c, fmt.Errorf("%w: ClusterID must not be zero", ErrInvalidConfig)
	case c.ID == 0:
		return c, fmt.Errorf("%w: ID must not be zero", ErrInvalidConfig)
	case c.ListenAddr == "":
		return c, fmt.Errorf("%w: ListenAddr is required", ErrInvalidConfig)
	case c.Raft == nil:
		return c, fmt.Errorf("%w: Raft is required", ErrInvalidConfig)
	case c.QueueSize < 0:
		return c, fmt.Errorf("%w: QueueSize %d is negative", ErrInvalidConfig, c.QueueSize)
	case (c.ServerTLS == nil) != (c.ClientTLS == nil):
		return c, fmt.Errorf("%w: set both ServerTLS and ClientTLS, or neither", ErrInvalidConfig)
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	if c.MaxMessageSize == 0 {
		c.MaxMessageSize = DefaultMaxMessageSize
	}
	if c.QueueSize == 0 {
		c.QueueSize = DefaultQueueSize
	}
	if c.IOTimeout <= 0 {
		c.IOTimeout = DefaultIOTimeout
	}
	c.Backoff = c.Backoff.withDefaults()
	if c.Clock == nil {
		c.Clock = realClock{}
	}
	if c.RandSeed == 0 {
		c.RandSeed = time.Now().UnixNano()
	}
	if c.SnapshotChunkSize == 0 {
		c.SnapshotChunkSize = min(DefaultSnapshotChunkSize, c.MaxMessageSize)
	}
	if c.SnapshotChunkSize > c.MaxMessageSize {
		return c, fmt.Errorf("%w: SnapshotChunkSize %d exceeds MaxMessageSize %d",
			ErrInvalidConfig, c.SnapshotChunkSize, c.MaxMessageSize)
	}
	if c.MaxSnapshotSize == 0 {
		c.MaxSnapshotSize = DefaultMaxSnapshotSize
	}
	return c, nil
}

// MutualTLS builds a matching pair of TLS configurations for mutual
// authentication inside one cluster: every member presents cert (signed by
// the cluster's CA) and accepts only peers whose certificates chain to ca.
// The server side requires client certificates; both sides use TLS 1.3.
func MutualTLS(cert tls.Certificate, ca *x509.CertPool) (server, client *tls.Config) {
	server = &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientCAs:    ca,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   tls.VersionTLS13,
	}
	client = &tls.Config{
		Certificates: []tls.Certificate{cert},
		RootCAs:      ca,
		MinVersion:   tls.VersionTLS13,
	}
	return server, client
}

// LoadMutualTLS reads a PEM certificate and key and a PEM CA bundle from
// files and returns MutualTLS's pair of configurations.
func LoadMutualTLS(certFile, keyFile, caFile string) (server, client *tls.Config, err error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, nil, fmt.Errorf("transport: loading key pair: %w", err)
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, nil, fmt.Errorf("transport: reading CA bundle: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, nil, fmt.Errorf("transport: no certificate found in CA bundle %s", caFile)
	}
	server, client = MutualTLS(cert, pool)
	return server, client, nil
}
