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
	src, m, err := p.t.snapshotSource(m)
	if err != nil {
		return err
	}
	defer src.Close()
	header := make([]byte, snapHeaderLen+m.Size())
	binary.BigEndian.PutUint64(header[0:8], src.Size())
	binary.BigEndian.PutUint32(header[8:12], src.Checksum())
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
	cw := &chunkWriter{conn: conn, w: bw, size: int(p.t.cfg.SnapshotChunkSize), timeout: timeout}
	n, err := src.WriteTo(cw)
	if err == nil {
		err = cw.flush()
	}
	if err != nil {
		return err
	}
	if uint64(n) != src.Size() {
		return fmt.Errorf("%w: the source wrote %d bytes of the %d announced", ErrSnapshotCorrupt, n, src.Size())
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	_ = conn.SetReadDeadline(time.Now().Add(timeout))
	return readSnapshotAck(conn)
}

// snapshotSource returns the data to stream for m and the message to put
// in the header: without its data when the data is in the message, as it
// is when the application streams it (Config.Snapshots).
func (t *Transport) snapshotSource(m raftpb.Message) (SnapshotSource, raftpb.Message, error) {
	if t.cfg.Snapshots != nil {
		src, err := t.cfg.Snapshots.OpenSnapshot(m)
		if err != nil {
			return nil, m, fmt.Errorf("opening the snapshot's data: %w", err)
		}
		return src, m, nil
	}
	src := bytesSource(m.Snapshot.Data)
	snap := *m.Snapshot
	snap.Data = nil
	m.Snapshot = &snap
	return src, m, nil
}

// bytesSource is in-memory snapshot data.
type bytesSource []byte

func (b bytesSource) Size() uint64     { return uint64(len(b)) }
func (b bytesSource) Checksum() uint32 { return crc32.Checksum(b, castagnoli) }
func (b bytesSource) Close() error     { return nil }
func (b bytesSource) WriteTo(w io.Writer) (int64, error) {
	n, err := w.Write(b)
	return int64(n), err
}

// bytesSink assembles incoming snapshot data in memory.
type bytesSink struct{ data []byte }

func (b *bytesSink) Write(p []byte) (int, error) {
	b.data = append(b.data, p...)
	return len(p), nil
}
func (b *bytesSink) Commit() ([]byte, error) { return b.data, nil }
func (b *bytesSink) Abort()                  { b.data = nil }

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
	m, sink, err := t.readSnapshot(c, h)
	if err == nil {
		lg = lg.With(zap.Uint64("snapshot-index", m.Snapshot.Metadata.Index),
			zap.Int("snapshot-bytes", len(m.Snapshot.Data)))
		if perr := t.cfg.Raft.Process(t.ctx, m); perr != nil {
			err = fmt.Errorf("raft refused the snapshot: %w", perr)
			sink.Abort()
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

// readSnapshot reads and checks a snapshot stream's header and data, and
// returns the message for raft and the sink that took the data.
func (t *Transport) readSnapshot(c net.Conn, h handshake) (raftpb.Message, SnapshotSink, error) {
	timeout := t.cfg.IOTimeout
	br := bufio.NewReaderSize(c, 64<<10)
	_ = c.SetReadDeadline(time.Now().Add(timeout))
	header, err := readFrame(br, t.cfg.MaxMessageSize, nil)
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return raftpb.Message{}, nil, fmt.Errorf("%w: ended inside the header: %v", ErrSnapshotTruncated, err)
		}
		return raftpb.Message{}, nil, err
	}
	m, total, sum, err := t.decodeSnapshotHeader(header, h)
	if err != nil {
		return raftpb.Message{}, nil, err
	}
	var sink SnapshotSink
	if t.cfg.Snapshots != nil {
		if sink, err = t.cfg.Snapshots.ReceiveSnapshot(m, total); err != nil {
			return raftpb.Message{}, nil, fmt.Errorf("%w: %v", ErrSnapshotRejected, err)
		}
	} else {
		// The sender passed the handshake, so its announcement is
		// believed up to a point; beyond that the buffer grows only with
		// what arrives.
		sink = &bytesSink{data: make([]byte, 0, min(total, snapPrealloc))}
	}
	if err := t.copySnapshotData(c, br, sink, total, sum); err != nil {
		sink.Abort()
		return raftpb.Message{}, nil, err
	}
	data, err := sink.Commit()
	if err != nil {
		sink.Abort()
		return raftpb.Message{}, nil, fmt.Errorf("%w: %v", ErrSnapshotRejected, err)
	}
	m.Snapshot.Data = data
	return m, sink, nil
}

// copySnapshotData moves total bytes of chunks from br to sink and checks
// them against the announced checksum.
func (t *Transport) copySnapshotData(c net.Conn, br *bufio.Reader, sink io.Writer, total uint64, sum uint32) error {
	var buf []byte
	var got uint64
	var crc uint32
	for got < total {
		_ = c.SetReadDeadline(time.Now().Add(t.cfg.IOTimeout))
		piece, err := readFrame(br, t.cfg.MaxMessageSize, buf)
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return fmt.Errorf("%w: received %d of %d bytes", ErrSnapshotTruncated, got, total)
			}
			return fmt.Errorf("after %d of %d bytes: %w", got, total, err)
		}
		buf = piece[:0]
		if got+uint64(len(piece)) > total {
			return fmt.Errorf("%w: chunks overrun the announced %d bytes", ErrSnapshotCorrupt, total)
		}
		crc = crc32.Update(crc, castagnoli, piece)
		if _, err := sink.Write(piece); err != nil {
			return fmt.Errorf("storing the snapshot's data: %w", err)
		}
		got += uint64(len(piece))
	}
	if crc != sum {
		return fmt.Errorf("%w: checksum %08x, announced %08x", ErrSnapshotCorrupt, crc, sum)
	}
	return nil
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
