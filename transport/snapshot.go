package transport

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"time"

	"go.uber.org/zap"

	"github.com/raftkit/raft"
	"github.com/raftkit/raft/raftpb"
)

// A snapshot stream carries one MsgSnap on a connection of its own, so that a
// large snapshot never holds up the heartbeats and appends on the message
// stream. After the handshake the sender writes, as frames:
//
//  1. a header: the snapshot data's length (8 bytes) and CRC-32C (4 bytes),
//     followed by the message encoded without its snapshot data;
//  2. the data, in chunks of at most Config.SnapshotChunkSize bytes;
//
// and the receiver answers with one acknowledgement: a zero byte once raft
// took the snapshot, or a non-zero byte and a length-prefixed reason. The
// receiver hands raft nothing until every announced byte arrived and the
// checksum matched.

// snapHeaderLen is the fixed part of the header frame.
const snapHeaderLen = 12

// snapPrealloc bounds the buffer reserved for an incoming snapshot on its
// announced length alone.
const snapPrealloc = 64 << 20

// snapNack is the acknowledgement byte of a rejected snapshot (statusOK
// acknowledges one raft took).
const snapNack byte = 1

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Errors for snapshot streams a receiver rejects. The receiver logs them;
// the sender sees the rejection (or the broken connection) and reports
// SnapshotFailure.
var (
	// ErrSnapshotTruncated: the stream ended before all announced data.
	ErrSnapshotTruncated = errors.New("transport: truncated snapshot stream")
	// ErrSnapshotCorrupt: the data does not match its announced checksum
	// or length, or the header is malformed.
	ErrSnapshotCorrupt = errors.New("transport: corrupt snapshot stream")
	// ErrSnapshotTooLarge: the data exceeds Config.MaxSnapshotSize.
	ErrSnapshotTooLarge = errors.New("transport: snapshot exceeds the maximum snapshot size")
	// ErrSnapshotRejected: the receiver refused the snapshot (wrapped with
	// its reason); returned on the sending side.
	ErrSnapshotRejected = errors.New("transport: snapshot rejected by peer")
)

// sendSnapshot streams m in the background and reports the outcome to raft.
// Called by Send with the transport's read lock held (so Close cannot be
// waiting yet).
func (p *peer) sendSnapshot(m raftpb.Message) {
	p.t.wg.Add(1)
	go func() {
		defer p.t.wg.Done()
		start := time.Now()
		err := p.streamSnapshot(m)
		var size int
		var index uint64
		if m.Snapshot != nil {
			size, index = len(m.Snapshot.Data), m.Snapshot.Metadata.Index
		}
		lg := p.lg.With(zap.Uint64("snapshot-index", index), zap.Int("snapshot-bytes", size),
			zap.Duration("took", time.Since(start)))
		status := raft.SnapshotFinish
		if err != nil {
			status = raft.SnapshotFailure
			p.stats.snapsFailed.Add(1)
			lg.Warn("failed to send snapshot", zap.Error(err))
		} else {
			p.stats.snapsSent.Add(1)
			lg.Info("sent snapshot")
		}
		// After Close, raft is going away too; nobody is waiting for the
		// report.
		if p.t.ctx.Err() == nil {
			p.t.cfg.Raft.ReportSnapshot(p.id, status)
		}
	}()
}

// streamSnapshot sends one MsgSnap on a fresh connection and waits for the
// receiver's acknowledgement.
func (p *peer) streamSnapshot(m raftpb.Message) error {
	if m.Snapshot == nil {
		return fmt.Errorf("%w: MsgSnap without a snapshot", ErrSnapshotCorrupt)
	}
	data := m.Snapshot.Data
	snap := *m.Snapshot
	snap.Data = nil
	m.Snapshot = &snap
	header := make([]byte, snapHeaderLen+m.Size())
	binary.BigEndian.PutUint64(header[0:8], uint64(len(data)))
	binary.BigEndian.PutUint32(header[8:12], crc32.Checksum(data, castagnoli))
	if _, err := m.MarshalTo(header[snapHeaderLen:]); err != nil {
		panic(fmt.Sprintf("transport: marshaling a snapshot header: %v", err))
	}
	limit := p.t.cfg.MaxMessageSize
	if uint64(len(header)) > uint64(limit) {
		return fmt.Errorf("%w: snapshot header of %d bytes, limit %d", ErrFrameTooLarge, len(header), limit)
	}

	conn, err := p.dial(kindSnapshot)
	if err != nil {
		return err
	}
	defer conn.Close()
	// A removed peer or a closing transport must not wait out a slow
	// snapshot.
	stop := context.AfterFunc(p.ctx, func() { _ = conn.Close() })
	defer stop()

	bw := bufio.NewWriterSize(conn, 64<<10)
	timeout := p.t.cfg.IOTimeout
	_ = conn.SetWriteDeadline(time.Now().Add(timeout))
	if _, err := bw.Write(appendFrame(nil, header)); err != nil {
		return err
	}
	chunk := int(p.t.cfg.SnapshotChunkSize)
	var hdr [frameHeaderLen]byte
	for off := 0; off < len(data); off += chunk {
		piece := data[off:min(off+chunk, len(data))]
		_ = conn.SetWriteDeadline(time.Now().Add(timeout))
		binary.BigEndian.PutUint32(hdr[:], uint32(len(piece)))
		if _, err := bw.Write(hdr[:]); err != nil {
			return err
		}
		if _, err := bw.Write(piece); err != nil {
			return err
		}
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	_ = conn.SetReadDeadline(time.Now().Add(timeout))
	return readSnapshotAck(conn)
}

func readSnapshotAck(r io.Reader) error {
	var st [1]byte
	if _, err := io.ReadFull(r, st[:]); err != nil {
		return fmt.Errorf("waiting for the snapshot acknowledgement: %w", err)
	}
	if st[0] == statusOK {
		return nil
	}
	var n [2]byte
	if _, err := io.ReadFull(r, n[:]); err != nil {
		return fmt.Errorf("%w: reason unreadable: %v", ErrSnapshotRejected, err)
	}
	l := binary.BigEndian.Uint16(n[:])
	if l > maxRejectReason {
		return fmt.Errorf("%w: reason of %d bytes", ErrSnapshotRejected, l)
	}
	reason := make([]byte, l)
	if _, err := io.ReadFull(r, reason); err != nil {
		return fmt.Errorf("%w: reason unreadable: %v", ErrSnapshotRejected, err)
	}
	return fmt.Errorf("%w: %s", ErrSnapshotRejected, reason)
}

func encodeSnapshotNack(err error) []byte {
	reason := err.Error()
	if len(reason) > maxRejectReason {
		reason = reason[:maxRejectReason]
	}
	b := []byte{snapNack}
	b = binary.BigEndian.AppendUint16(b, uint16(len(reason)))
	return append(b, reason...)
}

// receiveSnapshot reads one snapshot stream and, only if it is complete and
// intact, hands the MsgSnap to raft; then acknowledges or rejects it.
func (t *Transport) receiveSnapshot(c net.Conn, h handshake, p *peer, lg *zap.Logger) {
	m, err := t.readSnapshot(c, h)
	if err == nil {
		lg = lg.With(zap.Uint64("snapshot-index", m.Snapshot.Metadata.Index),
			zap.Int("snapshot-bytes", len(m.Snapshot.Data)))
		if perr := t.cfg.Raft.Process(t.ctx, m); perr != nil {
			err = fmt.Errorf("raft refused the snapshot: %w", perr)
		}
	}
	_ = c.SetWriteDeadline(time.Now().Add(t.cfg.IOTimeout))
	if err != nil {
		p.stats.snapsRejected.Add(1)
		lg.Warn("rejected inbound snapshot", zap.Error(err))
		_, _ = c.Write(encodeSnapshotNack(err))
		return
	}
	p.stats.snapsReceived.Add(1)
	lg.Info("received snapshot")
	if _, err := c.Write([]byte{statusOK}); err != nil {
		lg.Warn("could not acknowledge a received snapshot", zap.Error(err))
	}
}

// readSnapshot reads and checks a snapshot stream's header and data.
func (t *Transport) readSnapshot(c net.Conn, h handshake) (raftpb.Message, error) {
	timeout := t.cfg.IOTimeout
	br := bufio.NewReaderSize(c, 64<<10)
	_ = c.SetReadDeadline(time.Now().Add(timeout))
	header, err := readFrame(br, t.cfg.MaxMessageSize, nil)
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return raftpb.Message{}, fmt.Errorf("%w: ended inside the header: %v", ErrSnapshotTruncated, err)
		}
		return raftpb.Message{}, err
	}
	m, total, sum, err := t.decodeSnapshotHeader(header, h)
	if err != nil {
		return raftpb.Message{}, err
	}
	// The sender passed the handshake, so its announcement is believed up to
	// a point; beyond that the buffer grows only with what arrives.
	data := make([]byte, 0, min(total, snapPrealloc))
	var buf []byte
	for uint64(len(data)) < total {
		_ = c.SetReadDeadline(time.Now().Add(timeout))
		piece, err := readFrame(br, t.cfg.MaxMessageSize, buf)
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return raftpb.Message{}, fmt.Errorf("%w: received %d of %d bytes", ErrSnapshotTruncated, len(data), total)
			}
			return raftpb.Message{}, fmt.Errorf("after %d of %d bytes: %w", len(data), total, err)
		}
		buf = piece[:0]
		if uint64(len(data))+uint64(len(piece)) > total {
			return raftpb.Message{}, fmt.Errorf("%w: chunks overrun the announced %d bytes", ErrSnapshotCorrupt, total)
		}
		data = append(data, piece...)
	}
	if got := crc32.Checksum(data, castagnoli); got != sum {
		return raftpb.Message{}, fmt.Errorf("%w: checksum %08x, announced %08x", ErrSnapshotCorrupt, got, sum)
	}
	m.Snapshot.Data = data
	return m, nil
}

// decodeSnapshotHeader parses and validates the header frame.
func (t *Transport) decodeSnapshotHeader(b []byte, h handshake) (m raftpb.Message, total uint64, sum uint32, err error) {
	if len(b) < snapHeaderLen {
		return m, 0, 0, fmt.Errorf("%w: header of %d bytes", ErrSnapshotCorrupt, len(b))
	}
	total = binary.BigEndian.Uint64(b[0:8])
	sum = binary.BigEndian.Uint32(b[8:12])
	if err := m.Unmarshal(b[snapHeaderLen:]); err != nil {
		return m, 0, 0, fmt.Errorf("%w: undecodable message: %v", ErrSnapshotCorrupt, err)
	}
	switch {
	case m.Type != raftpb.MsgSnap || m.Snapshot == nil:
		return m, 0, 0, fmt.Errorf("%w: a %s with snapshot %t on a snapshot stream", ErrSnapshotCorrupt, m.Type, m.Snapshot != nil)
	case m.From != h.from || m.To != t.cfg.ID:
		return m, 0, 0, fmt.Errorf("%w: message from %s to %s on a stream from %s",
			ErrSnapshotCorrupt, memberID(m.From), memberID(m.To), memberID(h.from))
	case total > t.cfg.MaxSnapshotSize:
		return m, 0, 0, fmt.Errorf("%w: %d bytes announced, limit %d", ErrSnapshotTooLarge, total, t.cfg.MaxSnapshotSize)
	}
	return m, total, sum, nil
}
