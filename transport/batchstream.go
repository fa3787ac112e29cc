package transport

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"time"
)

// kindBatch is a long-lived stream of opaque frames between two hosts of
// many raft groups (package multiraft), each frame one batch of messages
// of many groups. A Transport does not serve it: its listener refuses the
// kind as a malformed handshake; the multi-group host runs its own
// listener with AcceptBatchStream.
const kindBatch streamKind = 3

// BatchStreamConfig configures batch streams: the handshake, frame limit,
// timeouts and TLS of a Transport, for a caller that writes its own
// frames. ClusterID and ID are required.
type BatchStreamConfig struct {
	// ClusterID and ID are as in Config: the handshake refuses streams
	// from another cluster or meant for another host.
	ClusterID uint64
	ID        uint64
	// MaxFrameSize bounds one frame, in both directions. Default:
	// DefaultMaxMessageSize.
	MaxFrameSize uint32
	// IOTimeout bounds the dial, the TLS handshake and the hello.
	// Default: DefaultIOTimeout.
	IOTimeout time.Duration
	// ServerTLS and ClientTLS are as in Config (set both or neither).
	ServerTLS *tls.Config
	ClientTLS *tls.Config
}

func (c BatchStreamConfig) withDefaults() (BatchStreamConfig, error) {
	if c.ClusterID == 0 || c.ID == 0 {
		return c, fmt.Errorf("%w: ClusterID and ID must not be zero", ErrInvalidConfig)
	}
	if (c.ServerTLS == nil) != (c.ClientTLS == nil) {
		return c, fmt.Errorf("%w: set both ServerTLS and ClientTLS, or neither", ErrInvalidConfig)
	}
	if c.MaxFrameSize == 0 {
		c.MaxFrameSize = DefaultMaxMessageSize
	}
	if c.IOTimeout <= 0 {
		c.IOTimeout = DefaultIOTimeout
	}
	return c, nil
}

// DialBatchStream connects to host to at addr, secures the connection if
// configured and performs the handshake for a batch stream. A refusal
// comes back as the handshake's sentinel errors (ErrClusterIDMismatch,
// ErrWrongReceiver, ...). The connection has no deadline set.
func DialBatchStream(ctx context.Context, cfg BatchStreamConfig, to uint64, addr string) (net.Conn, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	d := net.Dialer{Timeout: cfg.IOTimeout}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			_ = c.Close()
		}
	}()
	// The context ends the handshake too, not only the dial: a peer that
	// accepts and never answers would otherwise hold the caller for
	// IOTimeout.
	raw := c
	stop := context.AfterFunc(ctx, func() { _ = raw.Close() })
	defer stop()
	_ = c.SetDeadline(time.Now().Add(cfg.IOTimeout))
	if cfg.ClientTLS != nil {
		tcfg := cfg.ClientTLS.Clone()
		if tcfg.ServerName == "" {
			if host, _, err := net.SplitHostPort(addr); err == nil {
				tcfg.ServerName = host
			}
		}
		tc := tls.Client(c, tcfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			return nil, fmt.Errorf("TLS handshake with %s: %w", addr, err)
		}
		c = tc
	}
	hello := handshake{version: ProtocolVersion, kind: kindBatch, clusterID: cfg.ClusterID, from: cfg.ID, to: to}
	if _, err := c.Write(hello.encode()); err != nil {
		return nil, fmt.Errorf("sending handshake to %s: %w", addr, err)
	}
	if err := readReply(c); err != nil {
		return nil, err
	}
	if !stop() { // the context ended as the handshake did: c is closed
		return nil, ctx.Err()
	}
	_ = c.SetDeadline(time.Time{})
	ok = true
	return c, nil
}

// AcceptBatchStream runs the listener's side of a batch stream on an
// accepted connection: TLS if configured, then the hello, which must be a
// batch stream of this cluster, for this host, in this protocol version,
// from a sender known reports as a peer. It answers the hello (with the
// reason on a refusal, as a Transport does) and returns the sender and the
// connection to read frames from (the TLS connection if any). On an error
// the caller closes c.
func AcceptBatchStream(ctx context.Context, c net.Conn, cfg BatchStreamConfig, known func(from uint64) bool) (uint64, net.Conn, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return 0, nil, err
	}
	_ = c.SetDeadline(time.Now().Add(cfg.IOTimeout))
	if cfg.ServerTLS != nil {
		tc := tls.Server(c, cfg.ServerTLS)
		if err := tc.HandshakeContext(ctx); err != nil {
			return 0, nil, fmt.Errorf("TLS handshake: %w", err)
		}
		c = tc
	}
	h, err := readBatchHello(c)
	if err != nil {
		return 0, nil, err
	}
	if detail, sentinel := admitBatch(cfg, h, known); sentinel != nil {
		_, _ = c.Write(encodeReply(sentinel, detail))
		return 0, nil, fmt.Errorf("%w: %s", sentinel, detail)
	}
	if _, err := c.Write(encodeReply(nil, "")); err != nil {
		return 0, nil, err
	}
	_ = c.SetDeadline(time.Time{})
	return h.from, c, nil
}

// readBatchHello reads a hello like readHandshake, but for the one stream
// kind a Transport's listener refuses.
func readBatchHello(r io.Reader) (handshake, error) {
	var b [handshakeLen]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return handshake{}, err
	}
	if [4]byte(b[0:4]) != handshakeMagic {
		return handshake{}, fmt.Errorf("%w: bad magic %q", ErrBadHandshake, b[0:4])
	}
	if streamKind(b[6]) != kindBatch {
		return handshake{}, fmt.Errorf("%w: stream kind %d is not a batch stream", ErrBadHandshake, b[6])
	}
	return handshake{
		version:   binary.BigEndian.Uint16(b[4:6]),
		kind:      kindBatch,
		clusterID: binary.BigEndian.Uint64(b[8:16]),
		from:      binary.BigEndian.Uint64(b[16:24]),
		to:        binary.BigEndian.Uint64(b[24:32]),
	}, nil
}

// admitBatch decides whether a batch stream's hello is welcome; it returns
// the refusal's detail and sentinel error otherwise.
func admitBatch(cfg BatchStreamConfig, h handshake, known func(uint64) bool) (string, error) {
	switch {
	case h.version != ProtocolVersion:
		return fmt.Sprintf("version %d spoken here, %d offered", ProtocolVersion, h.version), ErrVersionMismatch
	case h.clusterID != cfg.ClusterID:
		return fmt.Sprintf("local cluster %s, remote cluster %s",
			memberID(cfg.ClusterID), memberID(h.clusterID)), ErrClusterIDMismatch
	case h.to != cfg.ID:
		return fmt.Sprintf("stream for host %s reached host %s", memberID(h.to), memberID(cfg.ID)), ErrWrongReceiver
	case known != nil && !known(h.from):
		return fmt.Sprintf("host %s is not a peer of host %s", memberID(h.from), memberID(cfg.ID)), ErrUnknownMember
	}
	return "", nil
}

// AppendFrame appends one frame (a 4-byte big-endian length, then payload)
// to dst, or refuses a payload longer than max with ErrFrameTooLarge.
func AppendFrame(dst, payload []byte, max uint32) ([]byte, error) {
	if uint64(len(payload)) > uint64(max) {
		return dst, fmt.Errorf("%w: frame of %d bytes, limit %d", ErrFrameTooLarge, len(payload), max)
	}
	return appendFrame(dst, payload), nil
}

// ReadFrame reads one frame from r into buf (grown as needed) and returns
// its payload, which aliases buf. A length above max is refused with
// ErrFrameTooLarge before anything is allocated.
func ReadFrame(r io.Reader, max uint32, buf []byte) ([]byte, error) {
	return readFrame(r, max, buf)
}
