package multiraft

import (
	"bytes"
	"hash/fnv"

	"github.com/raftkit/raft/raftpb"
	"github.com/raftkit/raft/transport"
)

// Streamed snapshots in the simulation (seeds with simOpts.streams): a
// MsgSnap leaves its batch and travels as a stream in the wire format,
// delayed like a batch; in the faulty phase some streams are cut short or
// have a byte flipped. The receiver checks the stream as NetTransport's
// does; the sender's raft hears every stream's outcome when it is
// delivered (or found undeliverable), never at send time. The register
// the follower restores is the stream's data, so a damaged stream that got
// through would show as diverging registers.

// StreamsSnapshots implements SnapshotTransport.
func (e simEndpoint) StreamsSnapshots() bool { return e.s.o.streams }

// divertSnapshots queues each MsgSnap of b as a stream and returns b
// without them.
func (e simEndpoint) divertSnapshots(to HostID, b Batch) Batch {
	s := e.s
	rest := b.Items[:0:0]
	for _, it := range b.Items {
		if !isSnapItem(&it) {
			rest = append(rest, it)
			continue
		}
		var buf bytes.Buffer
		src, err := s.hosts[e.from-1].app.OpenSnapshot(it.Group, it.Msg)
		if err != nil {
			s.t.Fatal(err)
		}
		if _, err := writeSnapStream(&buf, it.Group, &it.Msg, src, 8, transport.DefaultMaxMessageSize, nil); err != nil {
			s.t.Fatal(err)
		}
		data := buf.Bytes()
		if s.faulty() && s.rng.Intn(100) < 30 {
			if s.rng.Intn(2) == 0 {
				data = data[:s.rng.Intn(len(data))]
			} else {
				data[s.rng.Intn(len(data))] ^= byte(1 + s.rng.Intn(255))
			}
		}
		s.msgs = append(s.msgs, simMsg{from: e.from, to: to, at: s.now + int64(s.rng.Intn(3)), data: data, snap: it.Group})
	}
	b.Items = rest
	return b
}

// deliverStream receives a stream at its host and reports the outcome to
// the sender.
func (s *sim) deliverStream(m simMsg) {
	h := fnv.New64a()
	_, _ = h.Write(m.data)
	s.mix(0x57, uint64(m.from), uint64(m.to), h.Sum64())
	dst, src := s.hosts[m.to-1], s.hosts[m.from-1]
	err := errNoSnapshots
	var it Item
	if !dst.down && !s.cut[m.to] && !s.cut[m.from] {
		rc := &snapReceiver{self: m.to, from: m.from, maxSize: 1 << 20, maxFrame: transport.DefaultMaxMessageSize,
			streams: dst.app, known: dst.h.hasGroup}
		r := bytes.NewReader(m.data)
		var hdr []byte
		if hdr, err = transport.ReadFrame(r, rc.maxFrame, nil); err == nil {
			it, err = rc.receive(r, hdr)
		}
	}
	if err == nil {
		s.streamsTaken++
		dst.h.Receive(Batch{From: m.from, Items: []Item{it}})
	} else {
		s.streamsFailed++
	}
	if !src.down {
		src.h.ReportSnapshot(m.snap, m.to, snapStatus(err))
	}
}

// OpenSnapshot implements SnapshotStreams: the register's encoding.
func (a *simApp) OpenSnapshot(g GroupID, m raftpb.Message) (SnapshotSource, error) {
	return bytesSource(bytes.Clone(m.Snapshot.Data)), nil
}

// ReceiveSnapshot implements SnapshotStreams: the register arrives in the
// stream, and raft restores what arrived.
func (a *simApp) ReceiveSnapshot(g GroupID, m raftpb.Message) (SnapshotSink, error) {
	return &simSink{s: a.s, want: m.Snapshot.Data}, nil
}

// simSink collects a stream's data; it fails the simulation if the data
// it is asked to commit is not what the sender sent (the header's copy).
type simSink struct {
	s    *sim
	want []byte
	data []byte
}

func (k *simSink) Write(p []byte) (int, error) {
	k.data = append(k.data, p...)
	return len(p), nil
}
func (k *simSink) Commit() ([]byte, error) {
	if !bytes.Equal(k.data, k.want) {
		k.s.t.Fatalf("seed %d: a damaged snapshot stream was taken: %q, sent %q", k.s.o.seed, k.data, k.want)
	}
	return k.data, nil
}
func (k *simSink) Abort() {}
