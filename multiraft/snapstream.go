package multiraft

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/raftkit/raft"
	"github.com/raftkit/raft/raftpb"
	"github.com/raftkit/raft/transport"
)

// Streamed snapshots. A batch frame is bounded (NetConfig.Stream's
// MaxFrameSize), and a snapshot inside one is held whole in memory on both
// sides. With SnapshotStreams configured, a transport takes every MsgSnap
// out of its batch: the message travels with the application's own Data
// (typically a small descriptor), and the state itself is read from a
// SnapshotSource on the leader's host and written to a SnapshotSink on the
// follower's, in chunks, on a connection of its own. Raft sees the
// snapshot on the follower only once the whole stream arrived intact; the
// leader's raft hears the outcome through Host.ReportSnapshot (and, until
// then, sends the follower nothing but heartbeats). A follower whose
// streams keep failing is streamed to less and less often (snapretry.go).
//
// The stream, as frames of package transport (4-byte length, payload):
//
//	header: "MRSN", uvarint group, the MsgSnap (protobuf)
//	chunks: 'C', up to SnapshotChunkSize bytes of data
//	end:    'E', the data's total length (8 bytes), the CRC-32C (4 bytes)
//	        of the header's payload followed by the data
//
// and the receiver answers with one frame: 0 (taken), or 1 and the reason
// it refused the snapshot. The header cannot be mistaken for a batch: a
// batch opens with its version byte (1).

// SnapshotStreams is the application's side of streamed snapshots. Its
// methods are called from the transport's goroutines, concurrently for
// different streams.
type SnapshotStreams interface {
	// OpenSnapshot returns the data of group g's outgoing MsgSnap m. An
	// error fails the stream (raft hears SnapshotFailure and retries,
	// after the transport's backoff).
	OpenSnapshot(g GroupID, m raftpb.Message) (SnapshotSource, error)
	// ReceiveSnapshot is called with an incoming MsgSnap of group g
	// before its data; the data goes to the returned sink. An error
	// refuses the stream.
	ReceiveSnapshot(g GroupID, m raftpb.Message) (SnapshotSink, error)
}

// SnapshotSource is the data of one outgoing snapshot. Its length and
// checksum are sent after the data, so it is read once.
type SnapshotSource interface {
	// WriteTo writes the data.
	WriteTo(w io.Writer) (int64, error)
	// Close releases the source; it is called once, whatever happened.
	Close() error
}

// SnapshotSink receives the data of one incoming snapshot.
type SnapshotSink interface {
	// Write takes the next piece of data, in order.
	io.Writer
	// Commit is called once all the data arrived and matched its length
	// and checksum; it returns the Data raft is handed in the MsgSnap
	// (the sender's, or a descriptor naming where the data now is).
	Commit() ([]byte, error)
	// Abort discards what was written; it is called instead of Commit
	// when the stream fails.
	Abort()
}

// SnapshotTransport is a Transport that may stream snapshots. While
// StreamsSnapshots is true, the host leaves reporting each MsgSnap's
// outcome to the transport (Host.ReportSnapshot), exactly once per MsgSnap
// it was handed, dropped ones included.
type SnapshotTransport interface {
	Transport
	StreamsSnapshots() bool
}

// streamsSnapshots reports whether t reports snapshot outcomes itself.
func streamsSnapshots(t Transport) bool {
	st, ok := t.(SnapshotTransport)
	return ok && st.StreamsSnapshots()
}

// snapReport is a snapshot outcome waiting in a group's inbox.
type snapReport struct {
	to     HostID
	status raft.SnapshotStatus
}

// ReportSnapshot tells group g's raft the outcome of the MsgSnap it sent
// to host to (raft.ReportSnapshot). A transport that streams snapshots
// calls it once per MsgSnap; reports for unknown groups are dropped.
func (h *Host) ReportSnapshot(g GroupID, to HostID, status raft.SnapshotStatus) {
	_ = h.submit(g, func(in *inbox) { in.snapReports = append(in.snapReports, snapReport{to, status}) })
}

// hasGroup reports whether g is a group of h.
func (h *Host) hasGroup(g GroupID) bool {
	_, err := h.group(g)
	return err == nil
}

// Errors of snapshot streams. The receiver logs them and refuses the
// stream before raft sees the snapshot; the sender reports SnapshotFailure.
var (
	// ErrSnapshotStream: a malformed header or frame, a length or
	// checksum mismatch, or a snapshot for a group the receiver lacks.
	ErrSnapshotStream = errors.New("multiraft: bad snapshot stream")
	// ErrSnapshotTruncated: the stream ended before its end frame.
	ErrSnapshotTruncated = errors.New("multiraft: truncated snapshot stream")
	// ErrSnapshotTooLarge: the data exceeds NetConfig.MaxSnapshotSize.
	ErrSnapshotTooLarge = errors.New("multiraft: snapshot exceeds the size limit")
	// ErrSnapshotRefused: the receiver refused the stream (wrapped with
	// its reason); returned on the sending side.
	ErrSnapshotRefused = errors.New("multiraft: snapshot refused by the receiver")
)

var snapStreamMagic = [4]byte{'M', 'R', 'S', 'N'}

const (
	snapChunk       byte = 'C'
	snapEnd         byte = 'E'
	snapEndLen           = 1 + 8 + 4
	snapReplyTaken  byte = 0
	snapReplyRefuse byte = 1
	// maxRefusal bounds the reason a refusing receiver sends back.
	maxRefusal = 1024
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// isSnapHeader reports whether a stream's first frame opens a snapshot.
func isSnapHeader(payload []byte) bool {
	return len(payload) >= len(snapStreamMagic) && [4]byte(payload[:4]) == snapStreamMagic
}

// appendSnapHeader encodes the header frame's payload.
func appendSnapHeader(dst []byte, g GroupID, m *raftpb.Message) ([]byte, error) {
	dst = append(dst, snapStreamMagic[:]...)
	dst = binary.AppendUvarint(dst, uint64(g))
	n := m.Size()
	start := len(dst)
	dst = append(dst, make([]byte, n)...)
	if _, err := m.MarshalTo(dst[start:]); err != nil {
		return nil, fmt.Errorf("multiraft: encoding a snapshot header: %w", err)
	}
	return dst, nil
}

// writeFrameTo writes one frame (length, then payload) to w.
func writeFrameTo(w io.Writer, payload []byte) error {
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(payload)))
	if _, err := w.Write(n[:]); err != nil {
		return err
	}
	_, err := w.Write(payload)
	return err
}

// snapWriter frames what is written to it as chunks of at most size
// bytes, counting and checksumming the data (crc starts as the header's). before, if set, runs before
// each frame (a write deadline).
type snapWriter struct {
	w      io.Writer
	size   int
	before func()
	buf    []byte // snapChunk, then pending data
	total  uint64
	crc    uint32
}

func (sw *snapWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		if len(sw.buf) == 0 {
			sw.buf = append(sw.buf, snapChunk)
		}
		k := min(sw.size+1-len(sw.buf), len(p))
		sw.buf = append(sw.buf, p[:k]...)
		sw.total += uint64(k)
		sw.crc = crc32.Update(sw.crc, castagnoli, p[:k])
		p = p[k:]
		if len(sw.buf) == sw.size+1 {
			if err := sw.flush(); err != nil {
				return n - len(p), err
			}
		}
	}
	return n, nil
}

func (sw *snapWriter) flush() error {
	if len(sw.buf) <= 1 {
		return nil
	}
	if sw.before != nil {
		sw.before()
	}
	err := writeFrameTo(sw.w, sw.buf)
	sw.buf = sw.buf[:0]
	return err
}

// writeSnapStream writes group g's snapshot m with src's data to w:
// header, chunks of chunkSize bytes, end. It returns the data's length.
func writeSnapStream(w io.Writer, g GroupID, m *raftpb.Message, src SnapshotSource, chunkSize int, maxFrame uint32, before func()) (uint64, error) {
	hdr, err := appendSnapHeader(nil, g, m)
	if err != nil {
		return 0, err
	}
	if uint64(len(hdr)) > uint64(maxFrame) {
		return 0, fmt.Errorf("%w: header of %d bytes over the frame limit %d", transport.ErrFrameTooLarge, len(hdr), maxFrame)
	}
	if before != nil {
		before()
	}
	if err := writeFrameTo(w, hdr); err != nil {
		return 0, err
	}
	sw := &snapWriter{w: w, size: max(1, min(chunkSize, int(maxFrame)-1)), before: before,
		crc: crc32.Checksum(hdr, castagnoli)}
	if _, err := src.WriteTo(sw); err != nil {
		return sw.total, fmt.Errorf("multiraft: reading the snapshot's data: %w", err)
	}
	if err := sw.flush(); err != nil {
		return sw.total, err
	}
	end := make([]byte, 0, snapEndLen)
	end = append(end, snapEnd)
	end = binary.BigEndian.AppendUint64(end, sw.total)
	end = binary.BigEndian.AppendUint32(end, sw.crc)
	if before != nil {
		before()
	}
	return sw.total, writeFrameTo(w, end)
}

// snapReceiver reads snapshot streams from one peer host.
type snapReceiver struct {
	self, from HostID
	maxSize    uint64
	maxFrame   uint32
	streams    SnapshotStreams
	// known reports whether the receiving host has the group.
	known func(GroupID) bool
	// before, if set, runs before each frame is read (a read deadline).
	before func()
}

// receive reads the rest of a stream whose header frame was hdr, and
// returns the item to hand the host: the MsgSnap with the sink's Data.
// Nothing reaches the host unless the whole stream arrived intact.
func (rc *snapReceiver) receive(r io.Reader, hdr []byte) (Item, error) {
	g, m, err := rc.decodeHeader(hdr)
	if err != nil {
		return Item{}, err
	}
	sink, err := rc.streams.ReceiveSnapshot(g, m)
	if err != nil {
		return Item{}, fmt.Errorf("%w: group %d: %v", ErrSnapshotStream, g, err)
	}
	if err := rc.copyData(r, sink, crc32.Checksum(hdr, castagnoli)); err != nil {
		sink.Abort()
		return Item{}, fmt.Errorf("group %d, snapshot at %d: %w", g, m.Snapshot.Metadata.Index, err)
	}
	data, err := sink.Commit()
	if err != nil {
		sink.Abort()
		return Item{}, fmt.Errorf("group %d: keeping the snapshot: %w", g, err)
	}
	snap := *m.Snapshot
	snap.Data = data
	m.Snapshot = &snap
	return Item{Group: g, Kind: KindRaft, Msg: m}, nil
}

// decodeHeader parses and checks a header frame.
func (rc *snapReceiver) decodeHeader(b []byte) (GroupID, raftpb.Message, error) {
	var m raftpb.Message
	if !isSnapHeader(b) {
		return 0, m, fmt.Errorf("%w: no snapshot header", ErrSnapshotStream)
	}
	g, n := binary.Uvarint(b[4:])
	if n <= 0 || g == 0 {
		return 0, m, fmt.Errorf("%w: bad group in the header", ErrSnapshotStream)
	}
	if err := m.Unmarshal(b[4+n:]); err != nil {
		return 0, m, fmt.Errorf("%w: undecodable message: %v", ErrSnapshotStream, err)
	}
	switch {
	case m.Type != raftpb.MsgSnap || m.Snapshot == nil:
		return 0, m, fmt.Errorf("%w: a %s (snapshot %t) on a snapshot stream", ErrSnapshotStream, m.Type, m.Snapshot != nil)
	case m.From != rc.from || m.To != rc.self:
		return 0, m, fmt.Errorf("%w: message from %d to %d on a stream from %d to %d",
			ErrSnapshotStream, m.From, m.To, rc.from, rc.self)
	case rc.known != nil && !rc.known(GroupID(g)):
		return 0, m, fmt.Errorf("%w: group %d is not hosted here", ErrSnapshotStream, g)
	}
	return GroupID(g), m, nil
}

// copyData moves the chunks to sink up to the end frame and checks the
// data's length, checksum (crc: the header's) and size limit.
func (rc *snapReceiver) copyData(r io.Reader, sink io.Writer, crc uint32) error {
	var buf []byte
	var total uint64
	for {
		if rc.before != nil {
			rc.before()
		}
		p, err := transport.ReadFrame(r, rc.maxFrame, buf)
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return fmt.Errorf("%w: after %d bytes", ErrSnapshotTruncated, total)
		}
		if err != nil {
			return fmt.Errorf("%w: after %d bytes: %v", ErrSnapshotStream, total, err)
		}
		buf = p[:0]
		switch {
		case len(p) > 0 && p[0] == snapChunk:
			total += uint64(len(p) - 1)
			if total > rc.maxSize {
				return fmt.Errorf("%w: over %d bytes, limit %d", ErrSnapshotTooLarge, total-uint64(len(p)-1), rc.maxSize)
			}
			crc = crc32.Update(crc, castagnoli, p[1:])
			if _, err := sink.Write(p[1:]); err != nil {
				return fmt.Errorf("storing the snapshot's data: %w", err)
			}
		case len(p) == snapEndLen && p[0] == snapEnd:
			wantLen, wantCRC := binary.BigEndian.Uint64(p[1:9]), binary.BigEndian.Uint32(p[9:13])
			if wantLen != total || wantCRC != crc {
				return fmt.Errorf("%w: received %d bytes with CRC %08x, the sender sent %d with %08x",
					ErrSnapshotStream, total, crc, wantLen, wantCRC)
			}
			return nil
		default:
			return fmt.Errorf("%w: unknown frame of %d bytes", ErrSnapshotStream, len(p))
		}
	}
}

// encodeSnapReply is the receiver's answer: taken (err nil) or refused.
func encodeSnapReply(err error) []byte {
	if err == nil {
		return []byte{snapReplyTaken}
	}
	reason := err.Error()
	if len(reason) > maxRefusal {
		reason = reason[:maxRefusal]
	}
	return append([]byte{snapReplyRefuse}, reason...)
}

// readSnapReply reads the receiver's answer.
func readSnapReply(r io.Reader) error {
	p, err := transport.ReadFrame(r, 1+maxRefusal, nil)
	switch {
	case err != nil:
		return fmt.Errorf("waiting for the snapshot's answer: %w", err)
	case len(p) == 1 && p[0] == snapReplyTaken:
		return nil
	case len(p) >= 1 && p[0] == snapReplyRefuse:
		return fmt.Errorf("%w: %s", ErrSnapshotRefused, p[1:])
	}
	return fmt.Errorf("%w: malformed answer of %d bytes", ErrSnapshotRefused, len(p))
}

// snapStatus maps a stream's outcome to raft's.
func snapStatus(err error) raft.SnapshotStatus {
	if err != nil {
		return raft.SnapshotFailure
	}
	return raft.SnapshotFinish
}
