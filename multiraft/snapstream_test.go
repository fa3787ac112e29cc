package multiraft

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/raftkit/raft"
	"github.com/raftkit/raft/raftpb"
	"github.com/raftkit/raft/tracker"
	"github.com/raftkit/raft/transport"
)

// streamApp is a recApp whose snapshots are streamed: a group's snapshot
// Data is a descriptor ("desc"), its state the group's payload, which the
// receiving side hands raft as the snapshot's Data (so that Restore
// records what arrived).
type streamApp struct {
	*recApp
	mu       sync.Mutex
	payload  map[GroupID][]byte
	opened   int
	aborted  int
	received int
	// refuse, while set, makes ReceiveSnapshot refuse every stream.
	refuse bool
	// As a SnapshotStreamObserver: outgoing streams the receiver
	// refused, the longest streak of failures, and MsgSnaps deferred.
	refusedOut, streak, deferredOut int
}

func (a *streamApp) SnapshotStreamFailed(g GroupID, to HostID, err error, failures int, wait int64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if errors.Is(err, ErrSnapshotRefused) {
		a.refusedOut++
	}
	a.streak = max(a.streak, failures)
}

func (a *streamApp) SnapshotStreamDeferred(g GroupID, to HostID) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.deferredOut++
}

func newStreamApp() *streamApp {
	return &streamApp{recApp: newRecApp(), payload: map[GroupID][]byte{}}
}

func (a *streamApp) setPayload(g GroupID, p []byte) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.payload[g] = p
}

func (a *streamApp) OpenSnapshot(g GroupID, m raftpb.Message) (SnapshotSource, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if string(m.Snapshot.Data) != "desc" {
		return nil, fmt.Errorf("snapshot data %q is not the descriptor", m.Snapshot.Data)
	}
	a.opened++
	return bytesSource(a.payload[g]), nil
}

func (a *streamApp) ReceiveSnapshot(g GroupID, m raftpb.Message) (SnapshotSink, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.refuse {
		return nil, errors.New("refusing every snapshot")
	}
	return &testSink{app: a}, nil
}

func (a *streamApp) setRefuse(refuse bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.refuse = refuse
}

type bytesSource []byte

func (b bytesSource) WriteTo(w io.Writer) (int64, error) {
	n, err := w.Write(b)
	return int64(n), err
}
func (b bytesSource) Close() error { return nil }

type testSink struct {
	app  *streamApp
	data []byte
	done bool
}

func (s *testSink) Write(p []byte) (int, error) {
	s.data = append(s.data, p...)
	return len(p), nil
}

func (s *testSink) Commit() ([]byte, error) {
	s.app.mu.Lock()
	defer s.app.mu.Unlock()
	s.app.received++
	s.done = true
	return s.data, nil
}

func (s *testSink) Abort() {
	s.app.mu.Lock()
	defer s.app.mu.Unlock()
	s.app.aborted++
}

func (a *streamApp) counts() (opened, received, aborted int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.opened, a.received, a.aborted
}

func testPayload(seed int64, n int) []byte {
	b := make([]byte, n)
	rand.New(rand.NewSource(seed)).Read(b)
	return b
}

// laggingMember makes host 3 join group 1 (led by host 1) while cut off,
// and compacts the log on hosts 1 and 2 past what host 3 has: host 3 then
// needs a snapshot, whose Data is "desc".
func laggingMember(t *testing.T, c *manualCluster) { laggingMemberWith(t, c, "desc") }

// laggingMemberWith is laggingMember with data as the snapshot's Data.
func laggingMemberWith(t *testing.T, c *manualCluster, data string) {
	c.createGroup(1, 1, 2)
	c.settle()
	c.elect(1, 1)
	c.net.Cut(3, true)
	if err := c.hosts[3].CreateGroup(GroupConfig{ID: 1, Join: true}); err != nil {
		t.Fatal(err)
	}
	if err := c.hosts[1].ProposeConfChange(1, raftpb.ConfChange{Type: raftpb.ConfChangeAddNode, NodeID: 3}); err != nil {
		t.Fatal(err)
	}
	c.propose(1, 1, "a")
	c.settle()
	applied := c.status(1, 1).Applied
	for _, id := range []HostID{1, 2} {
		if err := c.hosts[id].Compact(1, applied, []byte(data)); err != nil {
			t.Fatal(err)
		}
	}
	c.settle()
}

// streamingCluster is a manual cluster whose hosts stream snapshots over
// the MemNetwork.
func streamingCluster(t *testing.T) (*manualCluster, map[HostID]*streamApp) {
	apps := map[HostID]*streamApp{}
	var c *manualCluster
	c = newManualCluster(t, 3, func(cfg *HostConfig) {
		cfg.AnnounceCommitsAtOnce = true
		a := newStreamApp()
		apps[cfg.ID], cfg.App = a, a
	})
	for id, a := range apps {
		c.apps[id] = a.recApp
		c.net.SetSnapshotStreams(id, a)
	}
	return c, apps
}

// A lagging member gets its snapshot's state through a stream (several
// chunks), not inside a batch frame, and raft restores the Data its sink
// made of it.
func TestStreamedSnapshotOverMemNetwork(t *testing.T) {
	c, apps := streamingCluster(t)
	payload := testPayload(1, 5*memSnapChunk+123)
	apps[1].setPayload(1, payload)
	laggingMember(t, c)
	_, before := c.net.Traffic()
	c.net.Cut(3, false)
	c.tick(5)
	c.propose(1, 1, "b")
	c.settle()
	if got := c.apps[3].restored[1]; got != string(payload) {
		t.Fatalf("lagging member restored %d bytes, want the %d streamed: %s", len(got), len(payload), c.describe(1))
	}
	if got := c.apps[3].applied[1]; len(got) != 1 || got[0] != "b" {
		t.Fatalf("lagging member applied %v after the snapshot, want [b]", got)
	}
	if _, after := c.net.Traffic(); after-before >= uint64(len(payload)) {
		t.Fatalf("%d bytes in batch frames: the snapshot's state went inline", after-before)
	}
	if opened, received, aborted := apps[1].counts(); opened != 1 || aborted != 0 || apps[3].received != 1 {
		t.Fatalf("opened %d, received %d, aborted %d streams; want one streamed whole", opened, received, aborted)
	}
	st := c.net.SnapshotTraffic()
	if st.Sent != 1 || st.Received != 1 || st.Failed != 0 || st.BytesSent != st.BytesReceived || st.BytesSent <= uint64(len(payload)) {
		t.Fatalf("snapshot traffic %+v, want one stream of more than the %d bytes of data", st, len(payload))
	}
}

// snapTransport holds back the MsgSnaps it is sent (a stream in flight)
// and passes everything else to the MemNetwork.
type snapTransport struct {
	Transport
	mu    sync.Mutex
	snaps []Item
}

func (t *snapTransport) StreamsSnapshots() bool { return true }

func (t *snapTransport) Send(to HostID, b Batch) {
	var rest []Item
	for _, it := range b.Items {
		if isSnapItem(&it) {
			t.mu.Lock()
			t.snaps = append(t.snaps, it)
			t.mu.Unlock()
			continue
		}
		rest = append(rest, it)
	}
	b.Items = rest
	t.Transport.Send(to, b)
}

func progressOf(t *testing.T, h *Host, g GroupID, id HostID) tracker.Progress {
	grp, err := h.group(g)
	if err != nil {
		t.Fatal(err)
	}
	pr, ok := grp.rn.Status().Progress[id]
	if !ok {
		t.Fatalf("no progress for %d", id)
	}
	return pr
}

// With a transport that streams snapshots, the leader's raft waits for the
// stream's outcome (Host.ReportSnapshot) instead of being told at once
// that the snapshot went out: the follower stays in StateSnapshot while
// the stream runs, and a failure sends raft back to probing, from where it
// sends the snapshot again.
func TestStreamedSnapshotOutcomeAwaited(t *testing.T) {
	var st *snapTransport
	c := newManualCluster(t, 3, func(cfg *HostConfig) {
		if cfg.ID == 1 {
			st = &snapTransport{Transport: cfg.Transport}
			cfg.Transport = st
		}
	})
	laggingMember(t, c)
	c.net.Cut(3, false)
	c.tick(3)
	if len(st.snaps) != 1 {
		t.Fatalf("%d snapshots sent, want 1", len(st.snaps))
	}
	c.tick(5)
	if pr := progressOf(t, c.hosts[1], 1, 3); pr.State != tracker.StateSnapshot {
		t.Fatalf("follower in %s while its snapshot streams, want StateSnapshot", pr.State)
	}
	c.hosts[1].ReportSnapshot(1, 3, raft.SnapshotFailure)
	c.settle()
	if pr := progressOf(t, c.hosts[1], 1, 3); pr.State != tracker.StateProbe {
		t.Fatalf("follower in %s after its stream failed, want StateProbe", pr.State)
	}
	c.tick(3)
	if len(st.snaps) != 2 {
		t.Fatalf("%d snapshots sent after a failed stream, want a second", len(st.snaps))
	}
}

// A stream the MemNetwork damages is refused by the receiver before raft
// sees it; the leader hears of the failure and streams the snapshot again.
func TestStreamedSnapshotRetriedAfterFault(t *testing.T) {
	c, apps := streamingCluster(t)
	payload := testPayload(2, 3*memSnapChunk)
	apps[1].setPayload(1, payload)
	faults := 2
	c.net.SetSnapshotFault(func(from, to HostID, g GroupID, w io.Writer) io.Writer {
		if faults == 0 {
			return w
		}
		faults--
		if faults == 1 {
			return &flipWriter{w: w, at: 2 * memSnapChunk}
		}
		return &cutWriter{w: w, left: memSnapChunk}
	})
	laggingMember(t, c)
	c.net.Cut(3, false)
	for i := 0; i < 50 && c.apps[3].restored[1] == ""; i++ {
		c.tick(1)
	}
	if got := c.apps[3].restored[1]; got != string(payload) {
		t.Fatalf("lagging member restored %d bytes, want %d: %s", len(got), len(payload), c.describe(1))
	}
	if opened, _, _ := apps[1].counts(); opened != 3 {
		t.Fatalf("%d streams opened, want 3 (two damaged, one whole)", opened)
	}
	if _, received, aborted := apps[3].counts(); received != 1 || aborted != 2 {
		t.Fatalf("receiver committed %d and aborted %d streams, want 1 and 2", received, aborted)
	}
}

// flipWriter flips one bit of the byte at offset at.
type flipWriter struct {
	w  io.Writer
	n  int
	at int
}

func (f *flipWriter) Write(p []byte) (int, error) {
	if f.at >= f.n && f.at < f.n+len(p) {
		p = bytes.Clone(p)
		p[f.at-f.n] ^= 0x10
	}
	f.n += len(p)
	return f.w.Write(p)
}

// cutWriter passes left bytes, then fails.
type cutWriter struct {
	w    io.Writer
	left int
}

func (c *cutWriter) Write(p []byte) (int, error) {
	if len(p) > c.left {
		n, _ := c.w.Write(p[:c.left])
		c.left = 0
		return n, io.ErrClosedPipe
	}
	c.left -= len(p)
	return c.w.Write(p)
}

// encodeTestStream returns a whole stream of group g's snapshot from host
// 1 to host 2 with data, in the wire format, with chunks of chunk bytes.
func encodeTestStream(t testing.TB, g GroupID, data []byte, chunk int) []byte {
	return encodeTestStreamFrom(t, 1, g, data, chunk)
}

func encodeTestStreamFrom(t testing.TB, from HostID, g GroupID, data []byte, chunk int) []byte {
	m := raftpb.Message{Type: raftpb.MsgSnap, From: from, To: 2, Term: 3,
		Snapshot: &raftpb.Snapshot{Data: []byte("desc"), Metadata: raftpb.SnapshotMetadata{Index: 10, Term: 2}}}
	var buf bytes.Buffer
	if _, err := writeSnapStream(&buf, g, &m, bytesSource(data), chunk, transport.DefaultMaxMessageSize, nil); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// receiveTestStream runs the receiver of host 2 (which has groups 1 and 2)
// over stream, from host 1.
func receiveTestStream(stream []byte, maxSize uint64) (Item, *streamApp, error) {
	app := newStreamApp()
	rc := &snapReceiver{self: 2, from: 1, maxSize: maxSize, maxFrame: 1 << 20, streams: app,
		known: func(g GroupID) bool { return g == 1 || g == 2 }}
	r := bytes.NewReader(stream)
	hdr, err := transport.ReadFrame(r, rc.maxFrame, nil)
	if err != nil {
		return Item{}, app, fmt.Errorf("%w: %v", ErrSnapshotTruncated, err)
	}
	it, err := rc.receive(r, hdr)
	return it, app, err
}

// frameAt returns the offset of the i-th frame of stream.
func frameAt(stream []byte, i int) int {
	off := 0
	for ; i > 0; i-- {
		off += 4 + int(uint32(stream[off])<<24|uint32(stream[off+1])<<16|uint32(stream[off+2])<<8|uint32(stream[off+3]))
	}
	return off
}

// The receiver refuses, before anything reaches raft, a stream with a bad
// header, for a group it lacks, over the size limit, damaged or cut short;
// a whole stream comes out as the MsgSnap with the sink's Data.
func TestSnapshotStreamRefusals(t *testing.T) {
	data := testPayload(3, 1000)
	good := encodeTestStream(t, 1, data, 300)
	it, app, err := receiveTestStream(good, 1<<20)
	if err != nil || string(it.Msg.Snapshot.Data) != string(data) || it.Group != 1 || app.received != 1 {
		t.Fatalf("whole stream: %v, group %d, %d bytes of data", err, it.Group, len(it.Msg.Snapshot.Data))
	}
	flipped := bytes.Clone(good)
	flipped[frameAt(good, 2)+10] ^= 1 // inside the second chunk
	badMsg := bytes.Clone(good)
	badMsg[5] = 0xff // the group's uvarint runs into the message
	cases := []struct {
		name    string
		stream  []byte
		maxSize uint64
		want    error
	}{
		{"not a snapshot header", append([]byte{0, 0, 0, 4, 1, 2, 3, 4}, good[frameAt(good, 1):]...), 1 << 20, ErrSnapshotStream},
		{"undecodable header", badMsg, 1 << 20, ErrSnapshotStream},
		{"message from another host", encodeTestStreamFrom(t, 3, 1, data, 300), 1 << 20, ErrSnapshotStream},
		{"unknown group", encodeTestStream(t, 9, data, 300), 1 << 20, ErrSnapshotStream},
		{"over the size limit", good, 999, ErrSnapshotTooLarge},
		{"checksum mismatch", flipped, 1 << 20, ErrSnapshotStream},
		{"no end frame", good[:frameAt(good, 5)], 1 << 20, ErrSnapshotTruncated},
		{"cut inside a chunk", good[:frameAt(good, 3)-7], 1 << 20, ErrSnapshotTruncated},
		{"cut inside the header", good[:frameAt(good, 1)-3], 1 << 20, ErrSnapshotTruncated},
		{"unknown frame", append(good[:frameAt(good, 5)], 0, 0, 0, 1, 'X'), 1 << 20, ErrSnapshotStream},
	}
	for _, tc := range cases {
		_, app, err := receiveTestStream(tc.stream, tc.maxSize)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
		if app.received != 0 {
			t.Errorf("%s: the sink committed a refused stream", tc.name)
		}
	}
}

// The receiver never panics on a stream, and hands raft only what a
// sender wrote whole.
func FuzzSnapStream(f *testing.F) {
	f.Add(encodeTestStream(f, 1, testPayload(4, 100), 30))
	f.Add(encodeTestStream(f, 2, nil, 30))
	f.Add([]byte{0, 0, 0, 4, 'M', 'R', 'S', 'N'})
	f.Fuzz(func(t *testing.T, stream []byte) {
		it, app, err := receiveTestStream(stream, 1<<16)
		if err != nil {
			if app.received != 0 {
				t.Fatal("a refused stream was committed")
			}
			return
		}
		if it.Msg.Type != raftpb.MsgSnap || it.Msg.From != 1 || it.Msg.To != 2 || app.received != 1 {
			t.Fatalf("accepted %+v", it.Msg)
		}
	})
}

// Snapshots stream between hosts over loopback TCP, on connections of
// their own, with the batch stream's handshake.
func TestStreamedSnapshotOverTCP(t *testing.T) {
	apps := map[HostID]*streamApp{}
	nets := newNetTransports(t, 3, func(id HostID) NetConfig {
		apps[id] = newStreamApp()
		return NetConfig{Snapshots: apps[id], SnapshotChunkSize: 4 << 10}
	})
	payload := testPayload(5, 100<<10)
	apps[1].setPayload(1, payload)
	c := newManualCluster(t, 3, func(cfg *HostConfig) {
		cfg.Transport, cfg.App = nets[cfg.ID], apps[cfg.ID]
	})
	for id, h := range c.hosts {
		c.apps[id] = apps[id].recApp
		nets[id].Serve(h)
	}
	c.createGroup(1, 1, 2)
	// Over TCP, the cluster moves as frames arrive: drive it until cond.
	until := func(what string, cond func() bool) {
		deadline := time.Now().Add(30 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not by the deadline: %s", what, c.describe(1))
			}
			c.tick(1)
			time.Sleep(5 * time.Millisecond)
		}
	}
	_ = c.hosts[1].Campaign(1)
	until("leader", func() bool { return c.leader(1) == 1 })
	if err := c.hosts[3].CreateGroup(GroupConfig{ID: 1, Join: true}); err != nil {
		t.Fatal(err)
	}
	nets[1].RemovePeer(3) // host 3 misses the log until it is compacted
	if err := c.hosts[1].ProposeConfChange(1, raftpb.ConfChange{Type: raftpb.ConfChangeAddNode, NodeID: 3}); err != nil {
		t.Fatal(err)
	}
	c.propose(1, 1, "a")
	until("commit", func() bool { return c.apps[2].count(1) == 1 && c.apps[1].count(1) == 1 })
	applied := c.status(1, 1).Applied
	for _, id := range []HostID{1, 2} {
		if err := c.hosts[id].Compact(1, applied, []byte("desc")); err != nil {
			t.Fatal(err)
		}
	}
	c.settle()
	nets[1].AddPeer(3, nets[3].Addr().String())
	until("restore", func() bool {
		c.apps[3].mu.Lock()
		defer c.apps[3].mu.Unlock()
		return c.apps[3].restored[1] != ""
	})
	if got := c.apps[3].restored[1]; got != string(payload) {
		t.Fatalf("restored %d bytes, want the %d streamed", len(got), len(payload))
	}
	_, bytesOut, _ := nets[1].Traffic()
	if bytesOut >= uint64(len(payload)) {
		t.Fatalf("%d bytes in batch frames: the snapshot went inline", bytesOut)
	}
	out, in := nets[1].SnapshotTraffic(), nets[3].SnapshotTraffic()
	if out.Sent != 1 || out.BytesSent <= uint64(len(payload)) || in.Received != 1 || in.BytesReceived <= uint64(len(payload)) {
		t.Fatalf("snapshot traffic: sender %+v, receiver %+v; want one stream of more than the %d bytes of data each way",
			out, in, len(payload))
	}
}

// A NetTransport streams at most SnapshotStreamsPerPeer snapshots to a
// peer: one more fails at once (raft hears SnapshotFailure); and it
// refuses a peer's stream beyond as many inbound.
func TestSnapshotStreamLimits(t *testing.T) {
	app := newStreamApp()
	nt, err := NewNetTransport(NetConfig{ListenAddr: "127.0.0.1:0", Snapshots: app, SnapshotStreamsPerPeer: 1,
		Stream: transport.BatchStreamConfig{ClusterID: 7, ID: 1}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nt.Close() })
	h, err := New(HostConfig{ID: 1, Storage: NewMemStorage(), Transport: nt, App: app})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	if err := h.CreateGroup(GroupConfig{ID: 1, Members: []HostID{1, 2}}); err != nil {
		t.Fatal(err)
	}
	nt.Serve(h)
	nt.AddPeer(2, "127.0.0.1:1")
	nt.mu.Lock()
	p := nt.peers[2]
	nt.mu.Unlock()
	p.snaps <- struct{}{} // a stream in flight
	snap := raftpb.Message{Type: raftpb.MsgSnap, From: 1, To: 2,
		Snapshot: &raftpb.Snapshot{Data: []byte("desc"), Metadata: raftpb.SnapshotMetadata{Index: 5, Term: 1}}}
	nt.Send(2, Batch{From: 1, Items: []Item{{Group: 1, Kind: KindRaft, Msg: snap}}})
	grp, _ := h.group(1)
	grp.mu.Lock()
	reports := slices.Clone(grp.in.snapReports)
	grp.mu.Unlock()
	if len(reports) != 1 || reports[0] != (snapReport{2, raft.SnapshotFailure}) {
		t.Fatalf("reports %v for a stream over the limit, want one failure", reports)
	}
	if opened, _, _ := app.counts(); opened != 0 {
		t.Fatalf("%d sources opened for a stream over the limit", opened)
	}

	nt.mu.Lock()
	nt.snapsIn[2] = 1 // a stream from host 2 being received
	nt.mu.Unlock()
	hdr, err := appendSnapHeader(nil, 1, &raftpb.Message{Type: raftpb.MsgSnap, From: 2, To: 1, Snapshot: snap.Snapshot})
	if err != nil {
		t.Fatal(err)
	}
	server, client := net.Pipe()
	defer client.Close()
	go func() {
		defer server.Close()
		nt.serveSnapshot(server, server, 2, hdr)
	}()
	if err := readSnapReply(client); !errors.Is(err, ErrSnapshotRefused) || !strings.Contains(err.Error(), "limit") {
		t.Fatalf("a stream over the inbound limit: %v", err)
	}
	if _, received, _ := app.counts(); received != 0 {
		t.Fatal("a stream over the inbound limit was received")
	}
}

// A follower that refuses every snapshot costs its leader a stream only
// now and then: after each failure in a row the leader waits twice as
// long (up to snapRetryElections election timeouts) before it streams
// again, failing raft's MsgSnaps meanwhile without reading the state.
// Once the follower takes snapshots, one arrives within the longest wait.
func TestStreamedSnapshotBackoff(t *testing.T) {
	c, apps := streamingCluster(t)
	apps[1].setPayload(1, testPayload(6, 2*memSnapChunk))
	apps[3].setRefuse(true)
	laggingMember(t, c)
	c.net.Cut(3, false)
	const ticks = 300
	c.tick(ticks)
	// HeartbeatTick 1 and ElectionTick 10: waits of 1, 2, 4, ..., 32,
	// then 40 ticks; without them, a stream every heartbeat or two.
	opened, _, _ := apps[1].counts()
	if opened < 8 || opened > 14 {
		t.Fatalf("%d streams to a refusing follower in %d ticks, want 8 to 14: %+v",
			opened, ticks, c.net.SnapshotTraffic())
	}
	st := c.net.SnapshotTraffic()
	if st.Failed != uint64(opened) || st.Deferred == 0 || st.Sent != 0 {
		t.Fatalf("snapshot traffic %+v after %d refused streams", st, opened)
	}
	a := apps[1]
	a.mu.Lock()
	refused, streak, deferred := a.refusedOut, a.streak, a.deferredOut
	a.mu.Unlock()
	if refused != opened || streak != opened || uint64(deferred) != st.Deferred {
		t.Fatalf("the sender observed %d refusals (longest streak %d) and %d deferrals; want %d, %d and %d",
			refused, streak, deferred, opened, opened, st.Deferred)
	}
	apps[3].setRefuse(false)
	for i := 0; i <= snapRetryElections*10 && c.apps[3].restored[1] == ""; i++ {
		c.tick(1)
	}
	if c.apps[3].restored[1] == "" {
		t.Fatalf("no snapshot within the longest wait once the follower takes them: %s", c.describe(1))
	}
}

// The wait after a stream failure doubles from the shortest to the
// longest, restarts after a success, and a streak whose wait ended long
// ago starts again.
func TestSnapBackoffWaits(t *testing.T) {
	var b snapBackoff
	k, other := snapKey{from: 1, to: 2, g: 3}, snapKey{from: 1, to: 2, g: 4}
	now := int64(100)
	var waits []int64
	for i := 0; i < 7; i++ {
		r := b.failed(k, now, 2, 20)
		waits = append(waits, r.until-now)
		if !b.waiting(k, r.until-1, 20) || b.waiting(k, r.until, 20) || b.waiting(other, now, 20) {
			t.Fatalf("failure %d: waiting until %d, wrong around it", i+1, r.until)
		}
		now = r.until
	}
	if want := []int64{2, 4, 8, 16, 20, 20, 20}; !slices.Equal(waits, want) {
		t.Fatalf("waits %v, want %v", waits, want)
	}
	b.succeeded(k)
	if b.waiting(k, now, 20) {
		t.Fatal("waiting after a success")
	}
	if r := b.failed(k, now, 2, 20); r.failures != 1 || r.until != now+2 {
		t.Fatalf("first failure after a success: %+v at %d", r, now)
	}
	b.failed(k, now+2, 2, 20) // a streak of two, waiting until now+6
	if r := b.failed(k, now+6+21, 2, 20); r.failures != 1 {
		t.Fatalf("a failure long after the last wait continues the streak: %+v", r)
	}
	// A host restarted over the same transport counts from zero: a wait
	// set on the old clock neither holds nor continues the streak.
	b.failed(k, 1000, 2, 20)
	b.failed(k, 1002, 2, 20)
	if b.waiting(k, 3, 20) {
		t.Fatal("waiting on a new clock for a wait set on the old one")
	}
	if r := b.failed(k, 3, 2, 20); r.failures != 1 || r.until != 5 {
		t.Fatalf("a failure on a new clock continues the old streak: %+v", r)
	}
	if d := retryDelay(1000, 1, 1<<40); d != 1<<40 {
		t.Fatalf("retryDelay of a long streak: %d", d)
	}
}

// A NetTransport whose stream to a follower failed fails the next MsgSnap
// for it at once, without opening its source, until the host's clock
// passes the wait; then it streams again.
func TestSnapshotStreamBackoffOverTCP(t *testing.T) {
	app := newStreamApp()
	nt, err := NewNetTransport(NetConfig{ListenAddr: "127.0.0.1:0", Snapshots: app,
		Stream: transport.BatchStreamConfig{ClusterID: 7, ID: 1}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nt.Close() })
	h, err := New(HostConfig{ID: 1, Storage: NewMemStorage(), Transport: nt, App: app})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	if err := h.CreateGroup(GroupConfig{ID: 1, Members: []HostID{1, 2}}); err != nil {
		t.Fatal(err)
	}
	nt.Serve(h)
	nt.AddPeer(2, "127.0.0.1:1") // nothing listens: every stream fails
	grp, _ := h.group(1)
	reports := func() int {
		grp.mu.Lock()
		defer grp.mu.Unlock()
		return len(grp.in.snapReports)
	}
	snap := raftpb.Message{Type: raftpb.MsgSnap, From: 1, To: 2,
		Snapshot: &raftpb.Snapshot{Data: []byte("desc"), Metadata: raftpb.SnapshotMetadata{Index: 5, Term: 1}}}
	send := func(wantReports int) {
		t.Helper()
		nt.Send(2, Batch{From: 1, Items: []Item{{Group: 1, Kind: KindRaft, Msg: snap}}})
		for deadline := time.Now().Add(30 * time.Second); reports() < wantReports; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%d snapshot outcomes reported, want %d", reports(), wantReports)
			}
		}
	}
	send(1)
	send(2) // same tick: deferred, reported at once
	if opened, _, _ := app.counts(); opened != 1 {
		t.Fatalf("%d streams opened for two MsgSnaps in one tick after a failure, want 1", opened)
	}
	h.Tick() // HeartbeatTick 1: the first wait is over
	send(3)
	st := nt.SnapshotTraffic()
	if opened, _, _ := app.counts(); opened != 2 || st.Failed != 2 || st.Deferred != 1 {
		t.Fatalf("%d streams opened, traffic %+v; want a second stream after the wait", opened, st)
	}
}

// A stream whose source cannot be opened is the sender's failure: it
// backs off as any other, but counts as no refusal, on either side.
func TestStreamedSnapshotSourceFailure(t *testing.T) {
	c, apps := streamingCluster(t)
	laggingMemberWith(t, c, "not the descriptor") // streamApp opens only "desc"
	c.net.Cut(3, false)
	c.tick(20)
	st := c.net.SnapshotTraffic()
	a := apps[1]
	a.mu.Lock()
	refused, streak := a.refusedOut, a.streak
	a.mu.Unlock()
	if st.Failed < 2 || st.Deferred == 0 || st.Refused != 0 || refused != 0 || streak != int(st.Failed) {
		t.Fatalf("traffic %+v, %d refusals observed, streak %d; want failures backed off, none refused",
			st, refused, streak)
	}
}

// A stream cut short by RemovePeer says nothing about the follower: once
// the peer is back, its next snapshot streams at once.
func TestSnapshotStreamRemovedPeerNoBackoff(t *testing.T) {
	app := newStreamApp()
	nt, err := NewNetTransport(NetConfig{ListenAddr: "127.0.0.1:0", Snapshots: app,
		Stream: transport.BatchStreamConfig{ClusterID: 7, ID: 1, IOTimeout: time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nt.Close() })
	h, err := New(HostConfig{ID: 1, Storage: NewMemStorage(), Transport: nt, App: app})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	if err := h.CreateGroup(GroupConfig{ID: 1, Members: []HostID{1, 2}}); err != nil {
		t.Fatal(err)
	}
	nt.Serve(h)
	// A peer that accepts connections and never answers: a stream to it
	// waits in its handshake (a second, IOTimeout, so that RemovePeer
	// comes first).
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var held []net.Conn
	var heldMu sync.Mutex
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			heldMu.Lock()
			held = append(held, c)
			heldMu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = silent.Close()
		heldMu.Lock()
		defer heldMu.Unlock()
		for _, c := range held {
			_ = c.Close()
		}
	})
	nt.AddPeer(2, silent.Addr().String())
	grp, _ := h.group(1)
	reports := func() int {
		grp.mu.Lock()
		defer grp.mu.Unlock()
		return len(grp.in.snapReports)
	}
	snap := raftpb.Message{Type: raftpb.MsgSnap, From: 1, To: 2,
		Snapshot: &raftpb.Snapshot{Data: []byte("desc"), Metadata: raftpb.SnapshotMetadata{Index: 5, Term: 1}}}
	nt.Send(2, Batch{From: 1, Items: []Item{{Group: 1, Kind: KindRaft, Msg: snap}}})
	for deadline := time.Now().Add(30 * time.Second); func() bool { o, _, _ := app.counts(); return o == 0 }(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the stream did not start")
		}
	}
	nt.RemovePeer(2)
	for deadline := time.Now().Add(30 * time.Second); reports() < 1; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the stream cut by RemovePeer was not reported")
		}
	}
	nt.AddPeer(2, silent.Addr().String())
	nt.Send(2, Batch{From: 1, Items: []Item{{Group: 1, Kind: KindRaft, Msg: snap}}})
	if st := nt.SnapshotTraffic(); st.Deferred != 0 || st.Failed != 1 {
		t.Fatalf("traffic %+v: the snapshot after the peer came back was deferred", st)
	}
}
