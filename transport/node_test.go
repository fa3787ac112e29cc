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
	type cell struct {
		node    raft.Node
		tr      *Transport
		applied chan string
		seen    map[string]bool
	}
	cells := make([]*cell, n)
	peers := []raft.Peer{{ID: 1}, {ID: 2}, {ID: 3}}
	for i := range cells {
		id := uint64(i + 1)
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
		c := &cell{node: node, tr: tr, applied: make(chan string, 1024), seen: map[string]bool{}}
		cells[i] = c
		done := make(chan struct{})
		stopped := make(chan struct{})
		go func() {
			defer close(stopped)
			ticker := time.NewTicker(5 * time.Millisecond)
			defer ticker.Stop()
			for {
				select {
				case <-ticker.C:
					node.Tick()
				case rd := <-node.Ready():
					if !raft.IsEmptyHardState(rd.HardState) {
						_ = storage.SetHardState(rd.HardState)
					}
					_ = storage.Append(rd.Entries)
					tr.Send(rd.Messages)
					for _, e := range rd.CommittedEntries {
						switch e.Type {
						case raftpb.EntryNormal:
							if len(e.Data) > 0 {
								c.applied <- string(e.Data)
							}
						case raftpb.EntryConfChange:
							var cc raftpb.ConfChange
							_ = cc.Unmarshal(e.Data)
							node.ApplyConfChange(cc)
						}
					}
					node.Advance()
				case <-done:
					return
				}
			}
		}()
		t.Cleanup(func() {
			close(done)
			<-stopped
			_ = tr.Close()
			node.Stop()
		})
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
		want := fmt.Sprintf("put k%d", i)
		deadline := time.After(guard)
		retry := time.NewTicker(50 * time.Millisecond)
	propose:
		for {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_ = c.node.Propose(ctx, []byte(want))
			cancel()
			for {
				select {
				case got := <-c.applied:
					c.seen[got] = true
					if got == want {
						retry.Stop()
						break propose
					}
				case <-retry.C:
					continue propose
				case <-deadline:
					t.Fatalf("%q never committed", want)
				}
			}
		}
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
