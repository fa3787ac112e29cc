package transport

import (
	"encoding/binary"
	"errors"
	"math/rand"
	"net"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/raftkit/raft"
	"github.com/raftkit/raft/raftpb"
)

// snapMsg builds a MsgSnap carrying size bytes of seeded random data.
func snapMsg(from, to uint64, size int) raftpb.Message {
	data := make([]byte, size)
	rand.New(rand.NewSource(int64(size))).Read(data)
	return raftpb.Message{
		Type: raftpb.MsgSnap, From: from, To: to, Term: 4,
		Snapshot: &raftpb.Snapshot{
			Data: data,
			Metadata: raftpb.SnapshotMetadata{
				Index: 1000, Term: 4,
				ConfState: raftpb.ConfState{Voters: []uint64{1, 2, 3}, Learners: []uint64{4}},
			},
		},
	}
}

// A snapshot several chunks long reaches the receiver whole, while the
// message stream keeps working beside it; the sender reports
// SnapshotFinish.
func TestSnapshotStreaming(t *testing.T) {
	chunks := func(c *Config) { c.SnapshotChunkSize = 64 << 10 }
	a, b := startMember(t, 1, chunks), startMember(t, 2, chunks)
	connect(t, a, b)
	for _, size := range []int{3<<20 + 17, 0, 64 << 10} {
		snap := snapMsg(1, 2, size)
		a.Send([]raftpb.Message{snap, app(1, 2, 1, 10)})
		var got raftpb.Message
		for got.Type != raftpb.MsgSnap {
			got = b.recv(t)
		}
		if got.Snapshot.Data == nil {
			got.Snapshot.Data = []byte{}
		}
		if !reflect.DeepEqual(got, snap) {
			t.Fatalf("size %d: received snapshot differs (%d bytes of data)", size, len(got.Snapshot.Data))
		}
		if r := a.waitSnapReport(t); r != (snapReport{2, raft.SnapshotFinish}) {
			t.Fatalf("size %d: report %+v", size, r)
		}
	}
	if st := a.Stats().Peers[2]; st.SnapshotsSent != 3 || st.SnapshotsFailed != 0 {
		t.Fatalf("sender stats %+v", st)
	}
	if st := b.Stats().Peers[1]; st.SnapshotsReceived != 3 || st.SnapshotsRejected != 0 {
		t.Fatalf("receiver stats %+v", st)
	}
}

// faultyConn passes writes through until a byte budget is spent, then
// either cuts the connection (truncation) or flips one bit (corruption).
type faultyConn struct {
	net.Conn
	mu      sync.Mutex
	budget  int
	corrupt bool
	done    bool
}

func (c *faultyConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done || len(b) <= c.budget {
		c.budget -= len(b)
		return c.Conn.Write(b)
	}
	c.done = true
	if c.corrupt {
		b = append([]byte(nil), b...)
		b[c.budget] ^= 0x20
		return c.Conn.Write(b)
	}
	n, _ := c.Conn.Write(b[:c.budget])
	_ = c.Conn.Close()
	return n, net.ErrClosed
}

// faultSnapshots makes a member's outgoing snapshot connections faulty after
// skip bytes (handshake and header included).
func faultSnapshots(skip int, corrupt bool) func(*Config) {
	return func(c *Config) {
		c.SnapshotChunkSize = 4 << 10
		c.wrapConn = func(kind streamKind, _ uint64, conn net.Conn) net.Conn {
			if kind != kindSnapshot {
				return conn
			}
			return &faultyConn{Conn: conn, budget: skip, corrupt: corrupt}
		}
	}
}

// A snapshot stream cut short is rejected by the receiver, which hands raft
// nothing of it, and the sender reports SnapshotFailure. The stream to the
// same peer keeps carrying messages.
func TestTruncatedSnapshotRejected(t *testing.T) {
	a := startMember(t, 1, faultSnapshots(50<<10, false))
	b := startMember(t, 2, nil)
	connect(t, a, b)
	a.Send([]raftpb.Message{snapMsg(1, 2, 200<<10)})
	e := b.log.waitLog(t, "rejected inbound snapshot", "error=truncated snapshot stream")
	if !strings.Contains(e.fields["error"], "of 204800 bytes") {
		t.Fatalf("rejection does not say how much arrived: %v", e)
	}
	if r := a.waitSnapReport(t); r != (snapReport{2, raft.SnapshotFailure}) {
		t.Fatalf("report %+v", r)
	}
	a.Send([]raftpb.Message{app(1, 2, 9, 10)})
	if m := b.recv(t); m.Type != raftpb.MsgApp {
		t.Fatalf("raft got %+v, want only the MsgApp after the rejected snapshot", m)
	}
	if st := b.Stats().Peers[1]; st.SnapshotsRejected != 1 || st.SnapshotsReceived != 0 {
		t.Fatalf("receiver stats %+v", st)
	}
	if st := a.Stats().Peers[2]; st.SnapshotsFailed != 1 || st.SnapshotsSent != 0 {
		t.Fatalf("sender stats %+v", st)
	}
}

// A snapshot whose data was damaged on the way fails its checksum; the
// receiver says so to the sender, who reports SnapshotFailure.
func TestCorruptSnapshotRejected(t *testing.T) {
	a := startMember(t, 1, faultSnapshots(30<<10, true))
	b := startMember(t, 2, nil)
	connect(t, a, b)
	a.Send([]raftpb.Message{snapMsg(1, 2, 100<<10)})
	b.log.waitLog(t, "rejected inbound snapshot", "error=corrupt snapshot stream: checksum")
	a.log.waitLog(t, "failed to send snapshot", "error=snapshot rejected by peer: transport: corrupt snapshot stream")
	if r := a.waitSnapReport(t); r != (snapReport{2, raft.SnapshotFailure}) {
		t.Fatalf("report %+v", r)
	}
	select {
	case m := <-b.r.msgs:
		t.Fatalf("raft got %+v", m)
	default:
	}
}

// A snapshot raft refuses is reported as failed, with raft's reason.
func TestSnapshotRefusedByRaft(t *testing.T) {
	a := startMember(t, 1, nil)
	b := startMember(t, 2, nil)
	b.r.processErr = errors.New("node stopped")
	connect(t, a, b)
	a.Send([]raftpb.Message{snapMsg(1, 2, 1000)})
	a.log.waitLog(t, "failed to send snapshot", "error=node stopped")
	if r := a.waitSnapReport(t); r.status != raft.SnapshotFailure {
		t.Fatalf("report %+v", r)
	}
}

// rawSnapshotStream opens a snapshot stream by hand and writes the header of
// m announcing total bytes of data with checksum sum.
func rawSnapshotStream(t *testing.T, addr string, m raftpb.Message, total uint64, sum uint32) net.Conn {
	t.Helper()
	c, err := rawDial(t, addr, handshake{version: ProtocolVersion, kind: kindSnapshot, clusterID: cluster, from: m.From, to: m.To})
	if err != nil {
		t.Fatal(err)
	}
	snap := *m.Snapshot
	snap.Data = nil
	m.Snapshot = &snap
	body, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	hdr := binary.BigEndian.AppendUint64(nil, total)
	hdr = binary.BigEndian.AppendUint32(hdr, sum)
	if _, err := c.Write(appendFrame(nil, append(hdr, body...))); err != nil {
		t.Fatal(err)
	}
	return c
}

// The receiver's refusals of hand-made snapshot streams, read back as the
// sender would: a stream that ends early (half-closed, so the answer can
// still come back), one announcing more than the limit, and one whose
// chunks overrun what it announced.
func TestSnapshotStreamRefusals(t *testing.T) {
	b := startMember(t, 2, func(c *Config) { c.MaxSnapshotSize = 1 << 20 })
	if err := b.AddPeer(1, "127.0.0.1:1"); err != nil {
		t.Fatal(err)
	}
	addr := b.Addr().String()
	m := snapMsg(1, 2, 0)

	c := rawSnapshotStream(t, addr, m, 1000, 0)
	if _, err := c.Write(appendFrame(nil, make([]byte, 600))); err != nil {
		t.Fatal(err)
	}
	_ = c.(*net.TCPConn).CloseWrite()
	if err := readSnapshotAck(c); !errors.Is(err, ErrSnapshotRejected) || !strings.Contains(err.Error(), "received 600 of 1000 bytes") {
		t.Fatalf("truncated: %v", err)
	}

	c = rawSnapshotStream(t, addr, m, 2<<20, 0)
	if err := readSnapshotAck(c); !strings.Contains(fmtErr(err), ErrSnapshotTooLarge.Error()) {
		t.Fatalf("too large: %v", err)
	}

	c = rawSnapshotStream(t, addr, m, 10, 0)
	if _, err := c.Write(appendFrame(nil, make([]byte, 11))); err != nil {
		t.Fatal(err)
	}
	if err := readSnapshotAck(c); !strings.Contains(fmtErr(err), "chunks overrun the announced 10 bytes") {
		t.Fatalf("overrun: %v", err)
	}

	notSnap := app(1, 2, 1, 1)
	notSnap.Snapshot = &raftpb.Snapshot{}
	c = rawSnapshotStream(t, addr, notSnap, 0, 0)
	if err := readSnapshotAck(c); !strings.Contains(fmtErr(err), "a MsgApp with snapshot true on a snapshot stream") {
		t.Fatalf("not a snapshot: %v", err)
	}

	if st := b.Stats().Peers[1]; st.SnapshotsRejected != 4 {
		t.Fatalf("stats %+v", st)
	}
	select {
	case got := <-b.r.msgs:
		t.Fatalf("raft got %+v", got)
	default:
	}
}

func fmtErr(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}
