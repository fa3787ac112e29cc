package multiraft

import (
	"bytes"
	"errors"
	"net"
	"reflect"
	"sync"
	"testing"

	"go.uber.org/zap"

	"github.com/raftkit/raft/raftpb"
	"github.com/raftkit/raft/transport"
)

// With many awake groups led by one host, a heartbeat tick costs each
// peer host one item of heartbeats and one item of answers back, however
// many groups there are; every group's heartbeat still arrives and is
// answered (the followers' commit indexes and the leader's marks come
// from them). Sent as messages of their own, each group costs two items
// per member per period.
func TestHeartbeatsCoalescedPerPeerHost(t *testing.T) {
	const groups = 40
	for _, separate := range []bool{false, true} {
		taps := map[HostID]*tapTransport{}
		c := newManualCluster(t, 3, func(cfg *HostConfig) {
			tap := &tapTransport{next: cfg.Transport}
			taps[cfg.ID] = tap
			cfg.Transport = tap
			cfg.DisableQuiescence = true
			cfg.SeparateHeartbeats = separate
		})
		for g := GroupID(1); g <= groups; g++ {
			c.createGroup(g)
		}
		c.settle()
		for g := GroupID(1); g <= groups; g++ {
			_ = c.hosts[1].Campaign(g)
		}
		c.settle()
		c.tick(5) // past the appends that spare heartbeats (AppendSparesTicks)
		before := map[HostID]Stats{}
		for _, id := range c.ids {
			taps[id].sent = nil
			before[id] = c.hosts[id].Stats()
		}
		c.tick(1)
		beats, answers := 0, 0
		for _, id := range c.ids {
			for _, b := range taps[id].sent {
				for _, it := range b.expandHeartbeats(0) {
					switch it.Msg.Type {
					case raftpb.MsgHeartbeat:
						beats++
					case raftpb.MsgHeartbeatResp:
						answers++
					}
				}
			}
		}
		if beats != 2*groups || answers != 2*groups {
			t.Fatalf("separate=%v: %d heartbeats and %d answers in a heartbeat period, want %d each",
				separate, beats, answers, 2*groups)
		}
		items := 0
		for _, id := range c.ids {
			items += int(c.hosts[id].Stats().ItemsOut - before[id].ItemsOut)
		}
		want := 4 // host 1 to 2 and 3, and their answers
		if separate {
			want = 4 * groups
		}
		if items != want {
			t.Fatalf("separate=%v: %d items sent in a heartbeat period of %d groups, want %d", separate, items, groups, want)
		}
		c.release()
	}
}

// Coalesced heartbeats survive the wire beside other items, and what a
// list of them cannot hold is refused as malformed, never a panic.
func TestCoalescedHeartbeatsRoundTrip(t *testing.T) {
	b := Batch{From: 7,
		Items:          []Item{{Group: 3, Kind: KindRaft, Msg: raftpb.Message{Type: raftpb.MsgApp, From: 7, To: 2, Term: 3}}},
		Heartbeats:     []Heartbeat{{Group: 1, Term: 5, Commit: 9}, {Group: 1 << 40, Term: 1 << 33, Commit: 1 << 50}},
		HeartbeatResps: []Heartbeat{{Group: 2, Term: 5}},
	}
	got := roundTripBatch(t, b)
	items := got.expandHeartbeats(2)
	want := raftpb.Message{Type: raftpb.MsgHeartbeat, From: 7, To: 2, Term: 5, Commit: 9}
	if len(items) != 4 || items[1].Kind != KindRaft || items[1].Group != 1 || !reflect.DeepEqual(items[1].Msg, want) {
		t.Fatalf("expanded: %+v", items)
	}
	resp := raftpb.Message{Type: raftpb.MsgHeartbeatResp, From: 7, To: 2, Term: 5}
	if !reflect.DeepEqual(items[3].Msg, resp) || items[3].Group != 2 {
		t.Fatalf("expanded answer: %+v", items[3])
	}
	bad := []Batch{
		{From: 7, Heartbeats: []Heartbeat{{Group: 0, Term: 1}}},
	}
	for _, bb := range bad {
		enc, err := AppendBatch(nil, &bb)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := DecodeBatch(enc); !errors.Is(err, ErrBadBatch) {
			t.Fatalf("%+v decoded: %v", bb, err)
		}
	}
	// A list that claims more heartbeats than it holds, and one under a
	// group ID.
	for _, raw := range [][]byte{
		{batchVersion, 7, 1, 0, byte(kindHeartbeats), 2, 200, 1},
		{batchVersion, 7, 1, 4, byte(kindHeartbeats), 4, 1, 1, 1, 1},
	} {
		if _, err := DecodeBatch(raw); !errors.Is(err, ErrBadBatch) {
			t.Fatalf("%v decoded: %v", raw, err)
		}
	}
}

// Only plain heartbeats and answers coalesce: one with a read context, a
// rejection hint or any other field travels as a message of its own.
func TestOnlyPlainHeartbeatsCoalesce(t *testing.T) {
	o := newOutbox(1)
	o.coalesce = true
	msgs := []raftpb.Message{
		{Type: raftpb.MsgHeartbeat, From: 1, To: 2, Term: 2, Commit: 5},
		{Type: raftpb.MsgHeartbeat, From: 1, To: 2, Term: 2, Commit: 5, Context: []byte("read")},
		{Type: raftpb.MsgHeartbeatResp, From: 1, To: 2, Term: 2},
		{Type: raftpb.MsgHeartbeatResp, From: 1, To: 2, Term: 2, Context: []byte("read")},
		{Type: raftpb.MsgApp, From: 1, To: 2, Term: 2},
	}
	for _, m := range msgs {
		o.add(2, Item{Group: 9, Kind: KindRaft, Msg: m})
	}
	o.add(2, Item{Group: 9, Kind: KindQuiesce, Msg: msgs[0]})
	b := o.batches[2]
	if len(b.Heartbeats) != 1 || len(b.HeartbeatResps) != 1 || len(b.Items) != 4 {
		t.Fatalf("coalesced %d heartbeats and %d answers, kept %d items; want 1, 1, 4",
			len(b.Heartbeats), len(b.HeartbeatResps), len(b.Items))
	}
	if got := b.expandHeartbeats(2); !reflect.DeepEqual(got[4].Msg, msgs[0]) || !reflect.DeepEqual(got[5].Msg, msgs[2]) {
		t.Fatalf("expanded %+v and %+v, want %+v and %+v", got[4].Msg, got[5].Msg, msgs[0], msgs[2])
	}
}

// A coalesced heartbeat for a group the host does not run is dropped and
// counted, as an item would be.
func TestCoalescedHeartbeatForUnknownGroupDropped(t *testing.T) {
	c := newManualCluster(t, 3, nil)
	c.createGroup(1)
	c.settle()
	h := c.hosts[2]
	before := h.Stats().ItemsDropped
	h.Receive(Batch{From: 1, Heartbeats: []Heartbeat{{Group: 99, Term: 1}}, HeartbeatResps: []Heartbeat{{Group: 98, Term: 1}}})
	if n := h.Stats().ItemsDropped - before; n != 2 {
		t.Fatalf("%d dropped, want 2", n)
	}
}

// A merged batch over the frame limit keeps its coalesced heartbeats:
// they go in frames of their own after the items.
func TestSplitBatchKeepsHeartbeats(t *testing.T) {
	const limit = 4096
	nt := &NetTransport{lg: zap.NewNop(), cfg: NetConfig{Stream: transport.BatchStreamConfig{MaxFrameSize: limit}}}
	b := Batch{From: 1}
	for i := 0; i < 20; i++ {
		b.Items = append(b.Items, Item{Group: GroupID(i + 1), Kind: KindRaft,
			Msg: raftpb.Message{Type: raftpb.MsgApp, To: 2, From: 1, Entries: []raftpb.Entry{{Index: 1, Data: bytes.Repeat([]byte{1}, 500)}}}})
	}
	for i := 0; i < 500; i++ {
		b.Heartbeats = append(b.Heartbeats, Heartbeat{Group: GroupID(i + 1), Term: 1 << 40, Commit: 1 << 40})
		b.HeartbeatResps = append(b.HeartbeatResps, Heartbeat{Group: GroupID(i + 1), Term: 1 << 40})
	}
	w, r := net.Pipe()
	errc := make(chan error, 1)
	go func() {
		_, _, err := nt.writeBatch(w, &b, nil, nil)
		_ = w.Close()
		errc <- err
	}()
	var items, beats, answers int
	for {
		payload, err := transport.ReadFrame(r, limit, nil)
		if err != nil {
			break
		}
		dec, err := DecodeBatch(payload)
		if err != nil {
			t.Fatal(err)
		}
		items += len(dec.Items)
		beats += len(dec.Heartbeats)
		answers += len(dec.HeartbeatResps)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if items != 20 || beats != 500 || answers != 500 {
		t.Fatalf("arrived %d items, %d heartbeats, %d answers; want 20, 500, 500", items, beats, answers)
	}
}

// destLog records, per batch a host sends, where it went.
type destLog struct {
	inner Transport
	mu    sync.Mutex
	beats []HostID // the destination of every heartbeat sent
}

func (l *destLog) Send(to HostID, b Batch) {
	l.mu.Lock()
	for _, it := range b.expandHeartbeats(to) {
		if it.Msg.Type == raftpb.MsgHeartbeat {
			l.beats = append(l.beats, to)
		}
	}
	l.mu.Unlock()
	l.inner.Send(to, b)
}

// Only an answered append spares heartbeats: a member whose answers are
// lost (or that never got the append) keeps getting heartbeats every
// period, whose answers bring raft's recovery of what it lacks.
func TestUnansweredAppendSparesNoHeartbeat(t *testing.T) {
	var log *destLog
	c := newManualCluster(t, 3, func(cfg *HostConfig) {
		if cfg.ID == 1 {
			log = &destLog{inner: cfg.Transport}
			cfg.Transport = log
		}
		cfg.DisableQuiescence = true
	})
	c.createGroup(1)
	c.elect(1, 1)
	c.tick(5)
	c.net.CutLink(3, 1, true) // host 3 hears host 1, its answers are lost
	c.propose(1, 1, "a")
	c.settle()
	log.beats = nil
	c.hosts[1].Tick()
	if err := c.hosts[1].RunPending(); err != nil {
		t.Fatal(err)
	}
	if len(log.beats) != 1 || log.beats[0] != 3 {
		t.Fatalf("heartbeats on the tick after an append went to %v, want only host 3 (whose answer was lost)", log.beats)
	}
}
