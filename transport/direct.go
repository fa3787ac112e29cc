package transport

import (
	"net"
	"sync"
	"syscall"

	"github.com/raftkit/raft/raftpb"
)

// maxDirect bounds the messages Send may write on its caller's goroutine:
// larger ones (big appends) go through the writer, so that marshaling them
// never lengthens the Ready loop.
const maxDirect = 64 << 10

// direct is the state a peer's Send shares with its writer so that a message
// can skip the writer's wake-up when the writer is idle: at one proposer
// each commit waits for two such wake-ups (leader to follower and back).
//
// Invariant: the writer holds mu from taking a batch until it is written
// and flushed, so while Send holds mu with an empty queue and no rest,
// every earlier message to this peer is in the kernel already and the
// direct write keeps the order. Send only ever TryLocks mu, and writes with
// one non-blocking system call: a slow peer (the writer blocked in a write,
// or a full socket buffer) never blocks the caller.
type direct struct {
	mu sync.Mutex
	// raw is the stream's connection while a plain TCP stream is up, nil
	// otherwise (no stream, TLS, or a wrapped connection).
	raw syscall.RawConn
	// rest holds the bytes of a direct write the socket did not take; the
	// writer writes them before anything else.
	rest []byte
	buf  []byte
}

// attach makes conn's stream available to direct writes if it is a plain
// TCP connection.
func (d *direct) attach(conn net.Conn) {
	tc, ok := conn.(*net.TCPConn)
	if !ok {
		return
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return
	}
	d.mu.Lock()
	d.raw, d.rest = raw, nil
	d.mu.Unlock()
}

// detach ends direct writes to the stream and returns whether a partly
// written message was left in rest (it is lost with the stream).
func (d *direct) detach() bool {
	d.mu.Lock()
	lost := len(d.rest) > 0
	d.raw, d.rest = nil, nil
	d.mu.Unlock()
	return lost
}

// tryDirect writes m to the peer's stream on the caller's goroutine if the
// writer is idle and nothing is queued, and reports whether it took m.
// What the socket does not take at once is left to the writer.
func (p *peer) tryDirect(m *raftpb.Message) bool {
	d := &p.direct
	if !d.mu.TryLock() {
		return false
	}
	defer d.mu.Unlock()
	if d.raw == nil || len(d.rest) > 0 || !p.queue.empty() {
		return false
	}
	size := m.Size()
	if size > maxDirect || uint64(size) > uint64(p.t.cfg.MaxMessageSize) {
		return false
	}
	d.buf = frame(d.buf, m, size)
	p.stats.msgsSent.Add(1)
	if p.dropping.Load() {
		p.dropping.Store(false)
	}
	n := writeNonblocking(d.raw, d.buf)
	if n < len(d.buf) {
		d.rest = append(d.rest[:0], d.buf[n:]...)
		p.queue.wake()
	}
	p.stats.directWrites.Add(1)
	return true
}

// flushRest writes what a direct write left, on the writer's goroutine
// (holding d.mu, the write deadline set).
func (d *direct) flushRest(conn net.Conn) error {
	if len(d.rest) == 0 {
		return nil
	}
	_, err := conn.Write(d.rest)
	d.rest = d.rest[:0]
	return err
}
