package multiraft

import (
	"errors"
	"reflect"
	"sync"
	"testing"

	"github.com/raftkit/raft/raftpb"
)

// tapTransport records the batches a host sends before passing them on.
type tapTransport struct {
	next Transport
	mu   sync.Mutex
	sent []Batch
}

func (t *tapTransport) Send(to HostID, b Batch) {
	t.mu.Lock()
	t.sent = append(t.sent, b)
	t.mu.Unlock()
	t.next.Send(to, b)
}

// The messages of many groups for one host leave in one batch per round,
// and their Readys are saved with one SaveBatch call.
func TestOneBatchCarriesManyGroups(t *testing.T) {
	taps := map[HostID]*tapTransport{}
	c := newManualCluster(t, 3, func(cfg *HostConfig) {
		cfg.AnnounceCommitsAtOnce = true
		tap := &tapTransport{next: cfg.Transport}
		taps[cfg.ID] = tap
		cfg.Transport = tap
	})
	const groups = 20
	for g := GroupID(1); g <= groups; g++ {
		c.createGroup(g)
	}
	c.settle()
	for g := GroupID(1); g <= groups; g++ {
		_ = c.hosts[1].Campaign(g)
	}
	c.settle()
	taps[1].sent = nil
	saves, _ := c.store[1].Batches()
	for g := GroupID(1); g <= groups; g++ {
		c.propose(1, g, "w")
	}
	if err := c.hosts[1].RunPending(); err != nil {
		t.Fatal(err)
	}
	if n := len(taps[1].sent); n != 2 {
		t.Fatalf("host 1 sent %d batches for %d groups' appends, want one per peer host", n, groups)
	}
	for _, b := range taps[1].sent {
		seen := map[GroupID]bool{}
		for _, it := range b.Items {
			seen[it.Group] = true
		}
		if len(seen) != groups {
			t.Fatalf("a batch carried %d groups, want %d", len(seen), groups)
		}
	}
	if calls, _ := c.store[1].Batches(); calls != saves+1 {
		t.Fatalf("%d SaveBatch calls for one round of %d groups, want 1", calls-saves, groups)
	}
	c.settle()
	for g := GroupID(1); g <= groups; g++ {
		if c.apps[3].count(g) != 1 {
			t.Fatalf("group %d not applied on host 3", g)
		}
	}
}

func TestBatchRoundTrip(t *testing.T) {
	b := Batch{From: 7, Items: []Item{
		{Group: 1, Kind: KindRaft, Msg: raftpb.Message{Type: raftpb.MsgApp, From: 7, To: 2, Term: 3,
			Entries: []raftpb.Entry{{Term: 3, Index: 4, Data: []byte("x")}}}},
		{Group: 1 << 40, Kind: KindQuiesce, Msg: raftpb.Message{Type: raftpb.MsgHeartbeat, From: 7, To: 2, Commit: 4}},
		{Group: 5, Kind: KindWake, Msg: raftpb.Message{From: 7, To: 2}},
	}}
	roundTripBatch(t, b)
	empty, err := AppendBatch(nil, &Batch{From: 3})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := DecodeBatch(empty); err != nil || got.From != 3 || len(got.Items) != 0 {
		t.Fatalf("ping: %+v, %v", got, err)
	}
}

// FuzzDecodeBatch checks that no input makes the decoder panic and that
// what it accepts encodes back to a batch it accepts again.
func FuzzDecodeBatch(f *testing.F) {
	b := Batch{From: 7, Items: []Item{{Group: 1, Kind: KindRaft, Msg: raftpb.Message{Type: raftpb.MsgApp, From: 7, To: 2}}}}
	buf, _ := AppendBatch(nil, &b)
	f.Add(buf)
	f.Add([]byte{1, 0, 255, 255, 255, 255, 15})
	beats := Batch{From: 7, Heartbeats: []Heartbeat{{Group: 1, Term: 2, Commit: 3}}, HeartbeatResps: []Heartbeat{{Group: 4, Term: 2}}}
	buf, _ = AppendBatch(nil, &beats)
	f.Add(buf)
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := DecodeBatch(data)
		if err != nil {
			return
		}
		again, err := AppendBatch(nil, &got)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := DecodeBatch(again); err != nil {
			t.Fatalf("re-encoded batch refused: %v", err)
		}
	})
}

// roundTripBatch encodes b, checks that it decodes to b and that every
// truncation of it is refused as ErrBadBatch, and returns the decoded batch.
func roundTripBatch(t *testing.T, b Batch) Batch {
	t.Helper()
	buf, err := AppendBatch(nil, &b)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeBatch(buf)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, b) {
		t.Fatalf("round trip: got %+v, want %+v", got, b)
	}
	for i := 0; i < len(buf); i++ {
		if _, err := DecodeBatch(buf[:i]); !errors.Is(err, ErrBadBatch) {
			t.Fatalf("truncated to %d bytes: %v", i, err)
		}
	}
	return got
}
