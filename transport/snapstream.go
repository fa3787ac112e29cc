package transport

import (
	"encoding/binary"
	"io"
	"net"
	"time"

	"github.com/raftkit/raft/raftpb"
)

// SnapshotStreams lets an application whose state does not fit in memory
// send and receive snapshots as streams. With it, the Data of a MsgSnap is
// the application's own small descriptor (it travels in the stream's header
// as it is), and the state itself is read from a SnapshotSource on the
// sending side and written to a SnapshotSink on the receiving side, chunk by
// chunk, under the same length and checksum checks as in-memory data.
//
// Both methods are called from the transport's goroutines.
type SnapshotStreams interface {
	// OpenSnapshot returns the data of the outgoing MsgSnap m. An error
	// fails the send (raft hears SnapshotFailure and tries again later).
	OpenSnapshot(m raftpb.Message) (SnapshotSource, error)
	// ReceiveSnapshot is called with an incoming MsgSnap, before its size
	// bytes of data arrive; the data goes to the returned sink. An error
	// rejects the snapshot.
	ReceiveSnapshot(m raftpb.Message, size uint64) (SnapshotSink, error)
}

// SnapshotSource is the data of one outgoing snapshot. Size and Checksum
// are announced before the data, so they must describe exactly what
// WriteTo writes.
type SnapshotSource interface {
	// Size is the number of bytes WriteTo writes.
	Size() uint64
	// Checksum is the CRC-32C (Castagnoli) of those bytes.
	Checksum() uint32
	// WriteTo writes the data.
	WriteTo(w io.Writer) (int64, error)
	// Close releases the source; it is called once, whatever happened.
	Close() error
}

// SnapshotSink receives the data of one incoming snapshot.
type SnapshotSink interface {
	// Write takes the next piece of data, in order.
	io.Writer
	// Commit is called once every announced byte arrived and matched the
	// checksum. It returns the Data raft is handed in the MsgSnap (usually
	// the descriptor the sender put there, or one naming where the data
	// now is).
	Commit() ([]byte, error)
	// Abort discards what was written. It is called instead of Commit when
	// the stream fails, and after Commit if raft refused the snapshot.
	Abort()
}

// chunkWriter frames what is written to it as snapshot chunks of at most
// size bytes, extending the connection's write deadline for each.
type chunkWriter struct {
	conn    net.Conn
	w       io.Writer
	size    int
	timeout time.Duration
	buf     []byte
}

func (cw *chunkWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		k := min(cw.size-len(cw.buf), len(p))
		cw.buf = append(cw.buf, p[:k]...)
		p = p[k:]
		if len(cw.buf) == cw.size {
			if err := cw.flush(); err != nil {
				return n - len(p), err
			}
		}
	}
	return n, nil
}

// flush writes the buffered piece as one chunk.
func (cw *chunkWriter) flush() error {
	if len(cw.buf) == 0 {
		return nil
	}
	_ = cw.conn.SetWriteDeadline(time.Now().Add(cw.timeout))
	var hdr [frameHeaderLen]byte
	binary.BigEndian.PutUint32(hdr[:], uint32(len(cw.buf)))
	if _, err := cw.w.Write(hdr[:]); err != nil {
		return err
	}
	_, err := cw.w.Write(cw.buf)
	cw.buf = cw.buf[:0]
	return err
}
