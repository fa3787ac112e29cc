package transport

import (
	"encoding/binary"
	"errors"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/raftkit/raft/raftpb"
)

// directMax bounds the encoded size of the messages Send writes to a stream
// itself (see writeDirect). Small messages (acks, heartbeats, appends of a
// few entries) are the latency-bound ones; larger appends go through the
// queue, so that their encoding and copying overlap the Ready loop's own
// work (a leader's fsync) instead of delaying it.
const directMax = 16 << 10

// directWriter lets Send write a peer's messages to its stream from the
// caller's goroutine when nothing else is waiting to be written, saving the
// hand-over to the writer goroutine (a wake-up on each side of every hop of
// a commit). It never blocks: the write is one non-blocking system call,
// and whatever the socket does not take at once is left in carry for the
// writer goroutine, which writes it before anything taken from the queue.
//
// Order: the writer goroutine holds mu from taking a batch off the queue
// until the batch is written, and Send writes directly only while holding
// mu with the queue empty and no carry; so a message written directly
// never overtakes one queued before it.
type directWriter struct {
	mu sync.Mutex
	// raw is the current stream's socket, nil while no stream is up or
	// when the stream cannot be written without blocking (TLS: a record
	// must be written whole).
	raw syscall.RawConn
	// carry is what a direct write left unsent, written first by the
	// writer goroutine.
	carry []byte
	// buf is the scratch for encoding a direct write.
	buf []byte
	// carried counts direct writes the socket did not take whole.
	carried atomic.Uint64
}

// attach makes conn the stream that direct writes go to.
func (d *directWriter) attach(conn net.Conn) {
	var raw syscall.RawConn
	if tc, ok := conn.(*net.TCPConn); ok {
		raw, _ = tc.SyscallConn()
	}
	d.mu.Lock()
	d.raw, d.carry = raw, d.carry[:0]
	d.mu.Unlock()
}

// detach stops direct writes to the stream, once it is broken or closed. A
// carry left unwritten is lost with the stream, like what is still in the
// writer's buffer; raft hears of the break as the peer being unreachable.
func (d *directWriter) detach() {
	d.mu.Lock()
	d.raw, d.carry = nil, d.carry[:0]
	d.mu.Unlock()
}

// writeDirect tries to write msgs (all to p) to p's stream from the calling
// goroutine. It returns false, having written nothing, when it cannot: no
// stream, the writer goroutine busy, messages queued, or msgs too large for
// a direct write; the caller queues them then. On true every message was
// written, left in carry for the writer goroutine, or dropped as too large
// to send.
func (p *peer) writeDirect(msgs []raftpb.Message) bool {
	d := &p.direct
	if !d.mu.TryLock() {
		return false
	}
	defer d.mu.Unlock()
	if d.raw == nil || len(d.carry) > 0 || !p.queue.empty() {
		return false
	}
	size := 0
	for k := range msgs {
		size += frameHeaderLen + msgs[k].Size()
	}
	if size > directMax {
		return false
	}
	buf := d.buf[:0]
	for k := range msgs {
		buf = p.appendMessage(buf, &msgs[k])
	}
	d.buf = buf
	if len(buf) == 0 {
		return true
	}
	n := writeNonBlocking(d.raw, buf)
	if n < len(buf) {
		// The socket is full or the stream failed (a deadline passed, the
		// peer reset it): the writer goroutine writes the rest, under its
		// own deadline, and deals with the failure as with any other.
		d.carry = append(d.carry, buf[n:]...)
		d.carried.Add(1)
		p.queue.poke()
	}
	return true
}

// appendMessage appends m's frame to buf, or drops m (it is counted and
// reported) if it exceeds the maximum message size.
func (p *peer) appendMessage(buf []byte, m *raftpb.Message) []byte {
	size := m.Size()
	if !p.fits(m, size) {
		return buf
	}
	start := len(buf)
	buf = slices.Grow(buf, frameHeaderLen+size)[:start+frameHeaderLen+size]
	binary.BigEndian.PutUint32(buf[start:], uint32(size))
	if _, err := m.MarshalTo(buf[start+frameHeaderLen:]); err != nil {
		// Size and MarshalTo disagreeing is a bug in the generated code.
		panic("transport: marshaling a " + m.Type.String() + ": " + err.Error())
	}
	p.countSent()
	return buf
}

// writeNonBlocking writes b to raw without waiting for the socket to drain,
// and returns how many bytes it took. On an error it returns what was taken
// before it: the caller hands the rest to the writer goroutine, whose
// blocking write meets the same error and handles it.
func writeNonBlocking(raw syscall.RawConn, b []byte) int {
	written := 0
	err := raw.Write(func(fd uintptr) bool {
		for written < len(b) {
			n, err := syscall.Write(int(fd), b[written:])
			if errors.Is(err, syscall.EINTR) {
				continue
			}
			if err != nil || n <= 0 {
				return true
			}
			written += n
		}
		return true
	})
	_ = err // before any write (a deadline passed): nothing was written
	return written
}

// writeCarry writes what a direct write left unsent. Callers hold
// p.direct.mu (the writer goroutine, before taking the queue).
func (p *peer) writeCarry(conn net.Conn) error {
	d := &p.direct
	if len(d.carry) == 0 {
		return nil
	}
	_, err := conn.Write(d.carry)
	d.carry = d.carry[:0]
	return err
}
