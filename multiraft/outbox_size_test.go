package multiraft

import (
	"sync"
	"testing"

	"github.com/raftkit/raft/raftpb"
)

// capLog records the capacity of each batch's items as sent.
type capLog struct {
	mu   sync.Mutex
	caps []int
}

func (l *capLog) Send(to HostID, b Batch) {
	l.mu.Lock()
	l.caps = append(l.caps, cap(b.Items))
	l.mu.Unlock()
}

// A batch to a host starts with room for what recent batches to it held,
// so that a round of many groups does not grow its items slice by
// doubling; room a small batch does not need fades by a quarter per send.
func TestOutboxSizesBatchesFromRecentOnes(t *testing.T) {
	log := &capLog{}
	c := newManualCluster(t, 2, func(cfg *HostConfig) {
		if cfg.ID == 1 {
			cfg.Transport = log
		}
	})
	o := newOutbox(1)
	fill := func(n int) {
		for i := 0; i < n; i++ {
			o.add(2, Item{Group: GroupID(i + 1), Kind: KindRaft, Msg: raftpb.Message{Type: raftpb.MsgApp, To: 2}})
		}
		o.send(c.hosts[1])
	}
	fill(100)
	fill(1)
	fill(1)
	want := []int{-1, 100, 75}
	if len(log.caps) != 3 {
		t.Fatalf("sent %d batches, want 3", len(log.caps))
	}
	for i := 1; i < 3; i++ {
		if log.caps[i] != want[i] {
			t.Fatalf("batch %d had room for %d items, want %d (caps %v)", i, log.caps[i], want[i], log.caps)
		}
	}
}
