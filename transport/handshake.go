package transport

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// ProtocolVersion is the version of the wire protocol this package speaks. A
// transport refuses streams that announce another version: the framing, the
// handshake and the snapshot stream layout may all change between versions.
const ProtocolVersion uint16 = 1

// handshakeMagic opens every stream so that a stray client (an HTTP probe, a
// port scanner) is told apart from a peer speaking an old or new version.
var handshakeMagic = [4]byte{'R', 'K', 'T', 'P'}

// handshakeLen is the size of the hello a dialing peer sends: magic (4),
// version (2), stream kind (1), reserved (1), cluster ID, sender ID and
// intended receiver ID (8 each).
const handshakeLen = 32

// maxRejectReason bounds the text a refusing peer sends back, so that a
// client reading a refusal never allocates more than this.
const maxRejectReason = 1024

// streamKind says what a connection carries after the handshake.
type streamKind uint8

const (
	// kindMessages is a long-lived stream of framed raftpb.Messages, one
	// per ordered pair of peers (each side dials its own outgoing stream).
	kindMessages streamKind = 1
	// kindSnapshot carries exactly one MsgSnap, its data in chunks, and is
	// answered with an acknowledgement; see snapshot.go.
	kindSnapshot streamKind = 2
)

func (k streamKind) String() string {
	switch k {
	case kindMessages:
		return "messages"
	case kindSnapshot:
		return "snapshot"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// The handshake errors are returned by the dialing side (wrapped with the
// refusing peer's explanation) and logged by the accepting side; compare
// them with errors.Is.
var (
	// ErrVersionMismatch: the two sides speak different protocol versions.
	ErrVersionMismatch = errors.New("transport: protocol version mismatch")
	// ErrClusterIDMismatch: the peer belongs to another cluster.
	ErrClusterIDMismatch = errors.New("transport: cluster ID mismatch")
	// ErrWrongReceiver: the dialer meant to reach another member than the
	// one listening at that address (a stale or mistyped peer address).
	ErrWrongReceiver = errors.New("transport: stream meant for another member")
	// ErrUnknownMember: the sender is not a peer of the receiver (never
	// added, or removed from the cluster).
	ErrUnknownMember = errors.New("transport: unknown member")
	// ErrBadHandshake: the hello was malformed (bad magic or stream kind).
	ErrBadHandshake = errors.New("transport: malformed handshake")
)

// handshake is the hello a dialing peer sends before anything else.
type handshake struct {
	version   uint16
	kind      streamKind
	clusterID uint64
	from, to  uint64
}

func (h handshake) encode() []byte {
	b := make([]byte, 0, handshakeLen)
	b = append(b, handshakeMagic[:]...)
	b = binary.BigEndian.AppendUint16(b, h.version)
	b = append(b, byte(h.kind), 0)
	b = binary.BigEndian.AppendUint64(b, h.clusterID)
	b = binary.BigEndian.AppendUint64(b, h.from)
	b = binary.BigEndian.AppendUint64(b, h.to)
	return b
}

// readHandshake reads and decodes a hello. It checks only the shape (magic,
// known stream kind); whether the sender is welcome is the listener's call.
func readHandshake(r io.Reader) (handshake, error) {
	var b [handshakeLen]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return handshake{}, err
	}
	if [4]byte(b[0:4]) != handshakeMagic {
		return handshake{}, fmt.Errorf("%w: bad magic %q", ErrBadHandshake, b[0:4])
	}
	h := handshake{
		version:   binary.BigEndian.Uint16(b[4:6]),
		kind:      streamKind(b[6]),
		clusterID: binary.BigEndian.Uint64(b[8:16]),
		from:      binary.BigEndian.Uint64(b[16:24]),
		to:        binary.BigEndian.Uint64(b[24:32]),
	}
	if h.kind != kindMessages && h.kind != kindSnapshot {
		return handshake{}, fmt.Errorf("%w: unknown stream kind %d", ErrBadHandshake, b[6])
	}
	return h, nil
}

// Reply status codes. The numbering is part of the wire protocol.
const (
	statusOK              byte = 0
	statusVersionMismatch byte = 1
	statusClusterMismatch byte = 2
	statusWrongReceiver   byte = 3
	statusUnknownMember   byte = 4
	statusBadHandshake    byte = 5
)

var statusErrors = map[byte]error{
	statusVersionMismatch: ErrVersionMismatch,
	statusClusterMismatch: ErrClusterIDMismatch,
	statusWrongReceiver:   ErrWrongReceiver,
	statusUnknownMember:   ErrUnknownMember,
	statusBadHandshake:    ErrBadHandshake,
}

// statusOf maps a refusal error back to its wire code.
func statusOf(err error) byte {
	for code, sentinel := range statusErrors {
		if errors.Is(err, sentinel) {
			return code
		}
	}
	return statusBadHandshake
}

// encodeReply builds the listener's answer: one status byte and, for a
// refusal (sentinel non-nil), a length-prefixed detail text cut to
// maxRejectReason bytes. The detail explains the refusal in the listener's
// terms ("local cluster 1, remote 2"); the sentinel travels as the code.
func encodeReply(sentinel error, detail string) []byte {
	if sentinel == nil {
		return []byte{statusOK}
	}
	if len(detail) > maxRejectReason {
		detail = detail[:maxRejectReason]
	}
	b := []byte{statusOf(sentinel)}
	b = binary.BigEndian.AppendUint16(b, uint16(len(detail)))
	return append(b, detail...)
}

// readReply reads the listener's answer. A refusal comes back as the matching
// sentinel error, wrapped with the listener's explanation.
func readReply(r io.Reader) error {
	var st [1]byte
	if _, err := io.ReadFull(r, st[:]); err != nil {
		return fmt.Errorf("transport: reading handshake reply: %w", err)
	}
	if st[0] == statusOK {
		return nil
	}
	var n [2]byte
	if _, err := io.ReadFull(r, n[:]); err != nil {
		return fmt.Errorf("transport: reading handshake refusal: %w", err)
	}
	l := binary.BigEndian.Uint16(n[:])
	if l > maxRejectReason {
		return fmt.Errorf("%w: refusal reason of %d bytes", ErrBadHandshake, l)
	}
	reason := make([]byte, l)
	if _, err := io.ReadFull(r, reason); err != nil {
		return fmt.Errorf("transport: reading handshake refusal: %w", err)
	}
	sentinel, ok := statusErrors[st[0]]
	if !ok {
		return fmt.Errorf("%w: unknown refusal status %d: %s", ErrBadHandshake, st[0], reason)
	}
	return fmt.Errorf("%w (refused by the peer: %s)", sentinel, reason)
}
