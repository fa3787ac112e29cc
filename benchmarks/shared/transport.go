package shared

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
	"log"
	"net"
	"sync"
	"time"
)

// maxFrame bounds one incoming frame; a larger one drops the connection.
const maxFrame = 64 << 20

// Transport carries encoded raft messages between voters, for the
// etcd-style libraries. Its design follows raftkit's transport so that only
// the library differs between the raftkit and etcd rows: one long-lived TCP
// stream per peer dialed by the sender, each message one frame (4-byte
// big-endian length, then the bytes), a bounded queue per peer that Send
// never blocks on (full queue: drop and report), messages encoded by the
// peer's writer goroutine rather than the Ready loop, and writes batched
// through a buffer flushed whenever the queue runs empty.
type Transport struct {
	id       uint64
	ln       net.Listener
	recv     func([]byte)
	dropped  func(to uint64)
	mu       sync.Mutex
	peers    map[uint64]*peer
	conns    map[net.Conn]struct{}
	closed   chan struct{}
	wg       sync.WaitGroup
	closeOne sync.Once
}

type peer struct {
	id   uint64
	addr string
	q    chan Encoder
}

// Encoder returns a message's wire bytes; the peer's writer goroutine calls
// it, so the caller must not change the message after Send.
type Encoder func() ([]byte, error)

// QueueSize is each peer's queue length, as raftkit's transport default.
const QueueSize = 4096

// NewTransport listens on addr and hands every received frame to recv
// (called from one goroutine per sending peer, in the order sent).
// dropped is told when a message to a peer is dropped.
func NewTransport(id uint64, addr string, recv func([]byte), dropped func(to uint64)) (*Transport, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	t := &Transport{id: id, ln: ln, recv: recv, dropped: dropped,
		peers: map[uint64]*peer{}, conns: map[net.Conn]struct{}{}, closed: make(chan struct{})}
	t.wg.Add(1)
	go t.accept()
	return t, nil
}

// AddPeer starts the stream to peer id at addr.
func (t *Transport) AddPeer(id uint64, addr string) {
	p := &peer{id: id, addr: addr, q: make(chan Encoder, QueueSize)}
	t.mu.Lock()
	t.peers[id] = p
	t.mu.Unlock()
	t.wg.Add(1)
	go t.write(p)
}

// Send queues the message enc encodes for peer to; it never blocks.
func (t *Transport) Send(to uint64, enc Encoder) {
	t.mu.Lock()
	p := t.peers[to]
	t.mu.Unlock()
	if p == nil {
		return
	}
	select {
	case p.q <- enc:
	default:
		t.dropped(to)
	}
}

// Close stops listening, closes every stream and waits for the goroutines.
func (t *Transport) Close() {
	t.closeOne.Do(func() {
		close(t.closed)
		t.ln.Close()
		t.mu.Lock()
		for c := range t.conns {
			c.Close()
		}
		t.mu.Unlock()
		t.wg.Wait()
	})
}

func (t *Transport) track(c net.Conn) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	select {
	case <-t.closed:
		c.Close()
		return false
	default:
	}
	t.conns[c] = struct{}{}
	return true
}

func (t *Transport) untrack(c net.Conn) {
	t.mu.Lock()
	delete(t.conns, c)
	t.mu.Unlock()
	c.Close()
}

func (t *Transport) accept() {
	defer t.wg.Done()
	for {
		c, err := t.ln.Accept()
		if err != nil {
			return
		}
		if !t.track(c) {
			return
		}
		t.wg.Add(1)
		go t.read(c)
	}
}

func (t *Transport) read(c net.Conn) {
	defer t.wg.Done()
	defer t.untrack(c)
	r := bufio.NewReaderSize(c, 64<<10)
	var hdr [8]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return // handshake: the sender's ID, unused beyond framing
	}
	for {
		var lb [4]byte
		if _, err := io.ReadFull(r, lb[:]); err != nil {
			return
		}
		n := binary.BigEndian.Uint32(lb[:])
		if n > maxFrame {
			return
		}
		b := make([]byte, n)
		if _, err := io.ReadFull(r, b); err != nil {
			return
		}
		t.recv(b)
	}
}

// write dials p, redialing every 50ms while it is down, and writes its
// queue. While no stream is up, queued messages are dropped and reported.
func (t *Transport) write(p *peer) {
	defer t.wg.Done()
	for {
		c, err := net.DialTimeout("tcp", p.addr, time.Second)
		if err == nil && t.track(c) {
			err = t.stream(c, p)
			t.untrack(c)
		}
		if err == nil {
			err = errors.New("closed")
		}
		select {
		case <-t.closed:
			return
		case <-time.After(50 * time.Millisecond):
		}
		t.drain(p)
	}
}

func (t *Transport) drain(p *peer) {
	for {
		select {
		case <-p.q:
			t.dropped(p.id)
		default:
			return
		}
	}
}

func (t *Transport) stream(c net.Conn, p *peer) error {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	w := bufio.NewWriterSize(c, 64<<10)
	var hdr [8]byte
	binary.BigEndian.PutUint64(hdr[:], t.id)
	if _, err := w.Write(hdr[:]); err != nil {
		return err
	}
	for {
		var enc Encoder
		select {
		case enc = <-p.q:
		case <-t.closed:
			return nil
		}
		if err := writeFrame(w, enc); err != nil {
			return err
		}
		// Batch what is already queued into the same flush.
		for more := true; more; {
			select {
			case enc = <-p.q:
				if err := writeFrame(w, enc); err != nil {
					return err
				}
			default:
				more = false
			}
		}
		_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
		if err := w.Flush(); err != nil {
			return err
		}
	}
}

// writeFrame encodes one message into w. A message that fails to encode
// is skipped: it is a local bug, not a broken stream.
func writeFrame(w *bufio.Writer, enc Encoder) error {
	b, err := enc()
	if err != nil {
		log.Printf("transport: dropping a message that does not encode: %v", err)
		return nil
	}
	var lb [4]byte
	binary.BigEndian.PutUint32(lb[:], uint32(len(b)))
	if _, err := w.Write(lb[:]); err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}
