package transport

import (
	"bytes"
	"hash/crc32"
	"io"
	"math/rand"
	"sync"
	"testing"

	"github.com/raftkit/raft"
	"github.com/raftkit/raft/raftpb"
)

// fakeStreams is an application's side of SnapshotStreams: it serves data
// for outgoing snapshots from a fixed buffer (written in odd-sized pieces)
// and keeps what arrives.
type fakeStreams struct {
	data    []byte
	badSum  bool // announce a wrong checksum
	mu      sync.Mutex
	sink    *fakeSink
	opened  int
	closed  int
	descOut []byte // what Commit returns
}

type fakeSink struct {
	f         *fakeStreams
	buf       bytes.Buffer
	committed bool
	aborted   bool
}

func (s *fakeSink) Write(p []byte) (int, error) { return s.buf.Write(p) }
func (s *fakeSink) Commit() ([]byte, error) {
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	s.committed = true
	return s.f.descOut, nil
}
func (s *fakeSink) Abort() {
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	s.aborted = true
}

type fakeSource struct{ f *fakeStreams }

func (s fakeSource) Size() uint64 { return uint64(len(s.f.data)) }
func (s fakeSource) Checksum() uint32 {
	sum := crc32.Checksum(s.f.data, castagnoli)
	if s.f.badSum {
		sum++
	}
	return sum
}
func (s fakeSource) WriteTo(w io.Writer) (int64, error) {
	var n int64
	for off := 0; off < len(s.f.data); off += 1000 {
		k, err := w.Write(s.f.data[off:min(off+1000, len(s.f.data))])
		n += int64(k)
		if err != nil {
			return n, err
		}
	}
	return n, nil
}
func (s fakeSource) Close() error {
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	s.f.closed++
	return nil
}

func (f *fakeStreams) OpenSnapshot(m raftpb.Message) (SnapshotSource, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.opened++
	return fakeSource{f}, nil
}

func (f *fakeStreams) ReceiveSnapshot(m raftpb.Message, size uint64) (SnapshotSink, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sink = &fakeSink{f: f}
	return f.sink, nil
}

// With Config.Snapshots, the data comes from the sender's source and goes
// to the receiver's sink, in chunks, under the same checks; raft gets the
// message with the Data the sink's Commit returned, and the message's own
// Data (the application's descriptor) travels in the header.
func TestSnapshotStreamsHook(t *testing.T) {
	data := make([]byte, 300<<10+7)
	rand.New(rand.NewSource(1)).Read(data)
	out := &fakeStreams{data: data}
	in := &fakeStreams{descOut: []byte("stored-at-1000")}
	a := startMember(t, 1, func(c *Config) { c.Snapshots = out; c.SnapshotChunkSize = 64 << 10 })
	b := startMember(t, 2, func(c *Config) { c.Snapshots = in })
	connect(t, a, b)
	m := snapMsg(1, 2, 0)
	m.Snapshot.Data = []byte("descriptor")
	a.Send([]raftpb.Message{m})
	got := b.recv(t)
	if got.Type != raftpb.MsgSnap || string(got.Snapshot.Data) != "stored-at-1000" {
		t.Fatalf("raft got %s with data %q", got.Type, got.Snapshot.Data)
	}
	if r := a.waitSnapReport(t); r != (snapReport{2, raft.SnapshotFinish}) {
		t.Fatalf("report %+v", r)
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if !bytes.Equal(in.sink.buf.Bytes(), data) || !in.sink.committed || in.sink.aborted {
		t.Fatalf("sink got %d bytes (want %d), committed %v, aborted %v",
			in.sink.buf.Len(), len(data), in.sink.committed, in.sink.aborted)
	}
	out.mu.Lock()
	defer out.mu.Unlock()
	if out.opened != 1 || out.closed != 1 {
		t.Fatalf("source opened %d, closed %d times", out.opened, out.closed)
	}
}

// A streamed snapshot that fails its checksum is aborted at the receiver,
// never handed to raft, and reported failed at the sender.
func TestSnapshotStreamsHookCorrupt(t *testing.T) {
	out := &fakeStreams{data: bytes.Repeat([]byte("x"), 10<<10), badSum: true}
	in := &fakeStreams{descOut: []byte("d")}
	a := startMember(t, 1, func(c *Config) { c.Snapshots = out })
	b := startMember(t, 2, func(c *Config) { c.Snapshots = in })
	connect(t, a, b)
	a.Send([]raftpb.Message{snapMsg(1, 2, 0)})
	b.log.waitLog(t, "rejected inbound snapshot", "error=corrupt snapshot stream: checksum")
	if r := a.waitSnapReport(t); r.status != raft.SnapshotFailure {
		t.Fatalf("report %+v", r)
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.sink == nil || in.sink.committed || !in.sink.aborted {
		t.Fatalf("sink %+v: want aborted, not committed", in.sink)
	}
	select {
	case m := <-b.r.msgs:
		t.Fatalf("raft got %+v", m)
	default:
	}
}
