package transport

import (
	"context"
	"fmt"
	"io"
	"log"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/raftkit/raft"
	"github.com/raftkit/raft/raftpb"
)

// Three raft.Nodes wired only through transports elect a leader and commit
// proposals on every member: the transport carries real raft traffic.
func TestNodesOverTransport(t *testing.T) {
	const n = 3
	cells := make([]*nodeCell, n)
	peers := []raft.Peer{{ID: 1}, {ID: 2}, {ID: 3}}
	for i := range cells {
		cells[i] = startNodeCell(t, uint64(i+1), peers)
	}
	for _, a := range cells {
		for j, b := range cells {
			if a != b {
				if err := a.tr.AddPeer(uint64(j+1), b.tr.Addr().String()); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	// Propose through every member (followers forward to the leader); a
	// proposal made before there is a leader is dropped, so each is retried
	// until it comes out of the log.
	for i, c := range cells {
		c.proposeUntilApplied(t, fmt.Sprintf("put k%d", i))
	}
	// Every member applies every proposal (duplicates from retries aside).
	for i, c := range cells {
		for len(c.seen) < n {
			select {
			case got := <-c.applied:
				c.seen[got] = true
			case <-time.After(guard):
				t.Fatalf("member %d applied only %v", i+1, c.seen)
			}
		}
	}
}

// nodeCell is one raft.Node with its own Transport, as in a real member.
type nodeCell struct {
	node    raft.Node
	tr      *Transport
	applied chan string     // normal entries' payloads, as applied
	seen    map[string]bool // payloads taken from applied so far
}

// startNodeCell starts node id of peers over memory storage, a Transport
// delivering to it, and a goroutine ticking it and serving its Ready; all
// are stopped at test cleanup.
func startNodeCell(t *testing.T, id uint64, peers []raft.Peer) *nodeCell {
	storage := raft.NewMemoryStorage()
	node := raft.StartNode(&raft.Config{
		ID: id, ElectionTick: 10, HeartbeatTick: 1, Storage: storage,
		MaxSizePerMsg: 1 << 20, MaxInflightMsgs: 256, CheckQuorum: true, PreVote: true,
		Logger: &raft.DefaultLogger{Logger: log.New(io.Discard, "", 0)},
	}, peers)
	tr, err := New(Config{ClusterID: cluster, ID: id, ListenAddr: "127.0.0.1:0",
		Raft: NodeRaft{node}, Logger: zap.NewNop(),
		Backoff: Backoff{Initial: time.Millisecond, Max: 10 * time.Millisecond, Multiplier: 2}})
	if err != nil {
		t.Fatal(err)
	}
	c := &nodeCell{node: node, tr: tr, applied: make(chan string, 1024), seen: map[string]bool{}}
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		c.serve(storage, done)
	}()
	t.Cleanup(func() {
		close(done)
		<-stopped
		_ = tr.Close()
		node.Stop()
	})
	return c
}

// serve ticks the node every 5ms and handles its Ready (persist, send,
// apply, advance) until done is closed.
func (c *nodeCell) serve(storage *raft.MemoryStorage, done <-chan struct{}) {
	ticker := time.NewTicker(5 * time.Millisecond)
	defer ticker.Stop()
	for {
		select {
		case <-ticker.C:
			c.node.Tick()
		case rd := <-c.node.Ready():
			if !raft.IsEmptyHardState(rd.HardState) {
				_ = storage.SetHardState(rd.HardState)
			}
			_ = storage.Append(rd.Entries)
			c.tr.Send(rd.Messages)
			for _, e := range rd.CommittedEntries {
				switch e.Type {
				case raftpb.EntryNormal:
					if len(e.Data) > 0 {
						c.applied <- string(e.Data)
					}
				case raftpb.EntryConfChange:
					var cc raftpb.ConfChange
					_ = cc.Unmarshal(e.Data)
					c.node.ApplyConfChange(cc)
				}
			}
			c.node.Advance()
		case <-done:
			return
		}
	}
}

// proposeUntilApplied proposes want through c, re-proposing every 50ms,
// until c applies it; it fails the test after guard.
func (c *nodeCell) proposeUntilApplied(t *testing.T, want string) {
	t.Helper()
	deadline := time.After(guard)
	retry := time.NewTicker(50 * time.Millisecond)
	defer retry.Stop()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = c.node.Propose(ctx, []byte(want))
		cancel()
	wait:
		for {
			select {
			case got := <-c.applied:
				c.seen[got] = true
				if got == want {
					return
				}
			case <-retry.C:
				break wait
			case <-deadline:
				t.Fatalf("%q never committed", want)
			}
		}
	}
}
