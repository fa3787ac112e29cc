package transport

import (
	"bufio"
	"errors"
	"net"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/raftkit/raft"
	"github.com/raftkit/raft/raftpb"
)

// Three members send each other many messages at once; each receiver gets
// every message from each sender, intact and in the order it was sent.
func TestRoundTripThreeMembers(t *testing.T) {
	ms := []*member{startMember(t, 1, nil), startMember(t, 2, nil), startMember(t, 3, nil)}
	connect(t, ms...)
	const perPair = 500
	for _, a := range ms {
		var batch []raftpb.Message
		for seq := uint64(1); seq <= perPair; seq++ {
			for _, b := range ms {
				if a != b {
					batch = append(batch, app(a.cfg.ID, b.cfg.ID, seq, int(seq%300)))
				}
			}
		}
		a.Send(batch)
	}
	for _, b := range ms {
		next := map[uint64]uint64{}
		for i := 0; i < 2*perPair; i++ {
			got := b.recv(t)
			next[got.From]++
			want := app(got.From, b.cfg.ID, next[got.From], int(next[got.From]%300))
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("member %d got %+v, want %+v", b.cfg.ID, got, want)
			}
		}
	}
	for _, a := range ms {
		for id, ps := range a.Stats().Peers {
			if ps.MsgsSent != perPair || ps.MsgsReceived != perPair || ps.MsgsDropped != 0 {
				t.Errorf("member %d, peer %d: %+v", a.cfg.ID, id, ps)
			}
		}
	}
}

// rawDial speaks the protocol by hand to a listener: it sends a hello and
// returns the connection and the listener's answer.
func rawDial(t *testing.T, addr string, h handshake) (net.Conn, error) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	_ = c.SetDeadline(time.Now().Add(guard))
	if _, err := c.Write(h.encode()); err != nil {
		t.Fatal(err)
	}
	return c, readReply(c)
}

// The listener refuses, with the matching error, every hello that is not
// from a known member of its cluster, for it, in its protocol version.
func TestHandshakeRefusals(t *testing.T) {
	b := startMember(t, 2, nil)
	if err := b.AddPeer(1, "127.0.0.1:1"); err != nil {
		t.Fatal(err)
	}
	good := handshake{version: ProtocolVersion, kind: kindMessages, clusterID: cluster, from: 1, to: 2}
	tests := []struct {
		name string
		edit func(*handshake)
		want error
	}{
		{"another cluster", func(h *handshake) { h.clusterID = 0xc2 }, ErrClusterIDMismatch},
		{"unknown member", func(h *handshake) { h.from = 9 }, ErrUnknownMember},
		{"meant for another member", func(h *handshake) { h.to = 3 }, ErrWrongReceiver},
		{"another version", func(h *handshake) { h.version = ProtocolVersion + 1 }, ErrVersionMismatch},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := good
			tt.edit(&h)
			if _, err := rawDial(t, b.Addr().String(), h); !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			e := b.log.waitLog(t, "refused inbound stream")
			if !strings.Contains(e.fields["error"], tt.want.Error()) {
				t.Fatalf("logged %v, want %v", e, tt.want)
			}
			if got := b.Stats().HandshakesRefused; got != uint64(i+1) {
				t.Fatalf("HandshakesRefused = %d, want %d", got, i+1)
			}
		})
	}
	if _, err := rawDial(t, b.Addr().String(), good); err != nil {
		t.Fatalf("good hello refused: %v", err)
	}
}

// A listener does not answer something that is not a raftkit peer at all.
func TestForeignClientIsDropped(t *testing.T) {
	b := startMember(t, 2, nil)
	c, err := net.Dial("tcp", b.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(guard))
	if _, err := c.Write([]byte("GET /metrics HTTP/1.1\r\nHost: example\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	b.log.waitLog(t, "refused inbound connection: bad handshake", "error=malformed handshake")
	if n, err := c.Read(make([]byte, 1)); n != 0 || err == nil {
		t.Fatalf("got %d bytes, %v; want the connection closed", n, err)
	}
}

// Two transports of different clusters never exchange a message; each side
// says why.
func TestWrongClusterRefused(t *testing.T) {
	a := startMember(t, 1, nil)
	b := startMember(t, 2, func(c *Config) { c.ClusterID = 0xc2 })
	if err := a.AddPeer(2, b.Addr().String()); err != nil {
		t.Fatal(err)
	}
	if err := b.AddPeer(1, a.Addr().String()); err != nil {
		t.Fatal(err)
	}
	a.Send([]raftpb.Message{app(1, 2, 1, 10)})
	a.log.waitLog(t, "cannot reach peer", "error=cluster ID mismatch", "error=local cluster c2, remote cluster c1")
	b.log.waitLog(t, "refused inbound stream", "error=cluster ID mismatch", "remote-member-id=1")
	a.waitUnreachable(t, 2)
	select {
	case m := <-b.r.msgs:
		t.Fatalf("member of another cluster received %+v", m)
	default:
	}
}

// A member refuses streams from a member it does not know; once it adds the
// member the stream comes up (the dialer keeps retrying), and once it
// removes the member again, the live stream is cut and redials are refused.
func TestUnknownMemberRefusedUntilAdded(t *testing.T) {
	a := startMember(t, 1, nil)
	b := startMember(t, 2, nil)
	if err := a.AddPeer(2, b.Addr().String()); err != nil {
		t.Fatal(err)
	}
	a.log.waitLog(t, "cannot reach peer", "error=unknown member")
	b.log.waitLog(t, "refused inbound stream", "error=member 1 is not a peer of member 2")

	if err := b.AddPeer(1, a.Addr().String()); err != nil {
		t.Fatal(err)
	}
	a.log.waitLog(t, "established message stream to peer")
	a.Send([]raftpb.Message{app(1, 2, 1, 10)})
	if m := b.recv(t); m.From != 1 || m.Index != 1 {
		t.Fatalf("got %+v", m)
	}

	b.RemovePeer(1)
	a.log.waitLog(t, "message stream to peer broke")
	b.log.waitLog(t, "refused inbound stream", "error=unknown member")
	if _, ok := b.Stats().Peers[1]; ok {
		t.Fatal("removed peer still has stats")
	}
}

// Sending to a peer nobody listens for: Send returns at once, the messages
// are dropped and raft hears that the peer is unreachable.
func TestPeerDownDropsAndReports(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := ln.Addr().String()
	_ = ln.Close()

	a := startMember(t, 1, func(c *Config) { c.QueueSize = 8 })
	if err := a.AddPeer(2, deadAddr); err != nil {
		t.Fatal(err)
	}
	sendReturns(t, a, 2, 1000)
	a.waitUnreachable(t, 2)
	a.log.waitLog(t, "cannot reach peer", "error=connection refused")
	a.log.waitLog(t, "dropping messages to peer")
	a.Send([]raftpb.Message{snapMsg(1, 2, 100)})
	if r := a.waitSnapReport(t); r != (snapReport{2, raft.SnapshotFailure}) {
		t.Fatalf("snapshot to a dead peer reported %+v", r)
	}
	if st := a.Stats().Peers[2]; st.DialFailures == 0 || st.MsgsSent != 0 || st.SnapshotsFailed != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// A peer that accepts connections but never answers holds the dialer in
// its handshake: the queue fills, and every message beyond it is dropped at
// once, counted exactly, and reported.
func TestFullQueueDropsWithoutBlocking(t *testing.T) {
	hole, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hole.Close()
	// The black hole accepts and holds connections; it never reads.
	var held []net.Conn
	accepting := make(chan struct{})
	go func() {
		defer close(accepting)
		for {
			c, err := hole.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	defer func() {
		_ = hole.Close()
		<-accepting
		for _, c := range held {
			_ = c.Close()
		}
	}()

	const queue = 8
	a := startMember(t, 1, func(c *Config) { c.QueueSize = queue; c.IOTimeout = time.Hour })
	if err := a.AddPeer(2, hole.Addr().String()); err != nil {
		t.Fatal(err)
	}
	sendReturns(t, a, 2, 100)
	a.waitUnreachable(t, 2)
	sendReturns(t, a, 2, 1000)
	st := a.Stats().Peers[2]
	if st.QueueDrops != 1100-queue || st.MsgsDropped != 1100-queue || st.MsgsSent != 0 {
		t.Fatalf("stats %+v; want %d queue drops", st, 1100-queue)
	}
}

// sendReturns sends n messages to id in one Send call, which must return
// without waiting for the network.
func sendReturns(t *testing.T, m *member, id uint64, n int) {
	t.Helper()
	msgs := make([]raftpb.Message, n)
	for i := range msgs {
		msgs[i] = app(m.cfg.ID, id, uint64(i), 16)
	}
	done := make(chan struct{})
	go func() {
		m.Send(msgs)
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(guard):
		t.Fatal("Send blocked")
	}
}

// A peer that restarts on the same address is redialed and gets messages
// again; the transport counts one reconnect.
func TestReconnectAfterPeerRestart(t *testing.T) {
	a := startMember(t, 1, nil)
	b := startMember(t, 2, nil)
	connect(t, a, b)
	a.Send([]raftpb.Message{app(1, 2, 1, 10)})
	b.recv(t)

	addr := b.Addr().String()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	a.log.waitLog(t, "message stream to peer broke")
	a.waitUnreachable(t, 2)

	b2 := startMember(t, 2, func(c *Config) { c.ListenAddr = addr })
	if err := b2.AddPeer(1, a.Addr().String()); err != nil {
		t.Fatal(err)
	}
	a.log.waitLog(t, "established message stream to peer", "peer-id=2")
	a.Send([]raftpb.Message{app(1, 2, 2, 10)})
	if m := b2.recv(t); m.Index != 2 {
		t.Fatalf("got %+v", m)
	}
	if st := a.Stats().Peers[2]; st.Connects != 2 || st.Reconnects != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// An incoming frame over the limit drops the connection, with a log line
// naming the sizes; nothing reaches raft.
func TestOversizedFrameDropsConnection(t *testing.T) {
	b := startMember(t, 2, func(c *Config) { c.MaxMessageSize = 1024 })
	if err := b.AddPeer(1, "127.0.0.1:1"); err != nil {
		t.Fatal(err)
	}
	c, err := rawDial(t, b.Addr().String(), handshake{version: ProtocolVersion, kind: kindMessages, clusterID: cluster, from: 1, to: 2})
	if err != nil {
		t.Fatal(err)
	}
	m := app(1, 2, 1, 2000)
	payload, _ := m.Marshal()
	if _, err := c.Write(appendFrame(nil, payload)); err != nil {
		t.Fatal(err)
	}
	b.log.waitLog(t, "dropping inbound stream: oversized frame", "error=limit 1024")
	if n, err := bufio.NewReader(c).Read(make([]byte, 1)); n != 0 || err == nil {
		t.Fatalf("read %d, %v; want the connection closed", n, err)
	}
	if got := b.Stats().StreamErrors; got != 1 {
		t.Fatalf("StreamErrors = %d", got)
	}
	select {
	case m := <-b.r.msgs:
		t.Fatalf("raft got %+v", m)
	default:
	}
}

// An outgoing message over the limit is dropped before it is written and the
// stream carries on with the next one.
func TestOversizedMessageNotSent(t *testing.T) {
	small := func(c *Config) { c.MaxMessageSize = 1024 }
	a, b := startMember(t, 1, small), startMember(t, 2, small)
	connect(t, a, b)
	a.Send([]raftpb.Message{app(1, 2, 1, 4096), app(1, 2, 2, 10)})
	a.log.waitLog(t, "dropping message to peer", "error=frame exceeds the maximum message size")
	a.waitUnreachable(t, 2)
	if m := b.recv(t); m.Index != 2 {
		t.Fatalf("got %+v", m)
	}
	if st := a.Stats().Peers[2]; st.MsgsDropped != 1 || st.MsgsSent != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// A message with a forged sender on an accepted stream ends the stream.
func TestForgedSenderDropsStream(t *testing.T) {
	b := startMember(t, 2, nil)
	for _, id := range []uint64{1, 3} {
		if err := b.AddPeer(id, "127.0.0.1:1"); err != nil {
			t.Fatal(err)
		}
	}
	c, err := rawDial(t, b.Addr().String(), handshake{version: ProtocolVersion, kind: kindMessages, clusterID: cluster, from: 1, to: 2})
	if err != nil {
		t.Fatal(err)
	}
	m := app(3, 2, 1, 10)
	payload, _ := m.Marshal()
	if _, err := c.Write(appendFrame(nil, payload)); err != nil {
		t.Fatal(err)
	}
	b.log.waitLog(t, "dropping inbound stream: message not from the stream's sender or not for this member", "from=3")
	if got := b.Stats().StreamErrors; got != 1 {
		t.Fatalf("StreamErrors = %d", got)
	}
}

// A follower relays MsgTransferLeader with the transferee as From; the
// stream accepts it when the transferee is a known member, and still ends
// the stream when it is not.
func TestRelayedTransferLeader(t *testing.T) {
	b := startMember(t, 2, nil)
	for _, id := range []uint64{1, 3} {
		if err := b.AddPeer(id, "127.0.0.1:1"); err != nil {
			t.Fatal(err)
		}
	}
	c, err := rawDial(t, b.Addr().String(), handshake{version: ProtocolVersion, kind: kindMessages, clusterID: cluster, from: 1, to: 2})
	if err != nil {
		t.Fatal(err)
	}
	send := func(m raftpb.Message) {
		payload, err := m.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write(appendFrame(nil, payload)); err != nil {
			t.Fatal(err)
		}
	}
	send(raftpb.Message{Type: raftpb.MsgTransferLeader, From: 3, To: 2})
	if m := b.recv(t); m.Type != raftpb.MsgTransferLeader || m.From != 3 {
		t.Fatalf("got %+v", m)
	}
	send(raftpb.Message{Type: raftpb.MsgTransferLeader, From: 2, To: 2})
	if m := b.recv(t); m.Type != raftpb.MsgTransferLeader || m.From != 2 {
		t.Fatalf("got %+v", m)
	}
	send(raftpb.Message{Type: raftpb.MsgTransferLeader, From: 9, To: 2})
	b.log.waitLog(t, "dropping inbound stream: message not from the stream's sender or not for this member", "from=9")
	if got := b.Stats().StreamErrors; got != 1 {
		t.Fatalf("StreamErrors = %d", got)
	}
}

func TestPeerManagement(t *testing.T) {
	a := startMember(t, 1, nil)
	for _, id := range []uint64{0, 1} {
		if err := a.AddPeer(id, "127.0.0.1:1"); !errors.Is(err, ErrInvalidPeer) {
			t.Fatalf("AddPeer(%d): %v", id, err)
		}
	}
	if err := a.AddPeer(2, "127.0.0.1:1"); err != nil {
		t.Fatal(err)
	}
	if err := a.AddPeer(2, "127.0.0.1:1"); err != nil {
		t.Fatalf("re-adding at the same address: %v", err)
	}
	if err := a.AddPeer(2, "127.0.0.1:2"); !errors.Is(err, ErrInvalidPeer) {
		t.Fatalf("re-adding at another address: %v", err)
	}
	a.RemovePeer(2)
	a.RemovePeer(2)
	a.Send([]raftpb.Message{app(1, 2, 1, 1), app(1, 5, 1, 1)})
	if got := a.Stats().UnknownPeerDrops; got != 2 {
		t.Fatalf("UnknownPeerDrops = %d", got)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := a.AddPeer(3, "127.0.0.1:1"); !errors.Is(err, ErrClosed) {
		t.Fatalf("AddPeer after Close: %v", err)
	}
	a.Send([]raftpb.Message{app(1, 3, 1, 1)}) // must neither panic nor block
}

func TestConfigValidation(t *testing.T) {
	r := newRecorder()
	base := Config{ClusterID: 1, ID: 1, ListenAddr: "127.0.0.1:0", Raft: r}
	tests := []struct {
		name string
		edit func(*Config)
	}{
		{"zero cluster", func(c *Config) { c.ClusterID = 0 }},
		{"zero ID", func(c *Config) { c.ID = 0 }},
		{"no address", func(c *Config) { c.ListenAddr = "" }},
		{"no raft", func(c *Config) { c.Raft = nil }},
		{"negative queue", func(c *Config) { c.QueueSize = -1 }},
		{"chunk above message limit", func(c *Config) { c.MaxMessageSize = 100; c.SnapshotChunkSize = 200 }},
		{"half TLS", func(c *Config) { c.ServerTLS, _ = MutualTLS(testCA(t).leaf(t, "x"), nil) }},
	}
	for _, tt := range tests {
		cfg := base
		tt.edit(&cfg)
		if _, err := New(cfg); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: %v", tt.name, err)
		}
	}
	if _, err := New(Config{ClusterID: 1, ID: 1, ListenAddr: "256.0.0.1:0", Raft: r}); err == nil {
		t.Error("listening on a bad address succeeded")
	}
}
