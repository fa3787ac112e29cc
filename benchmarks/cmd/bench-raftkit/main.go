// Command bench-raftkit runs the cross-library workload against raftkit:
// raft.Node with raftkit's wal storage (or MemoryStorage with fsync off)
// and raftkit's TCP transport.
package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	raft "github.com/raftkit/raft"
	"github.com/raftkit/raft/benchmarks/shared"
	pb "github.com/raftkit/raft/raftpb"
	"github.com/raftkit/raft/transport"
)

func main() { shared.Main("raftkit", build) }

func build(opts shared.Options) (shared.Cluster, error) {
	c := &cluster{}
	var trs []*transport.Transport
	peers := []raft.Peer{{ID: 1}, {ID: 2}, {ID: 3}}
	for i := range opts.Addrs {
		id := uint64(i + 1)
		p, err := newPersister(filepath.Join(opts.Dir, "n"+strconv.Itoa(i+1)), opts.Durable)
		if err != nil {
			return nil, err
		}
		n := &node{id: id, p: p, opts: opts, stopc: make(chan struct{}), done: make(chan struct{}),
			waiters: map[uint64]chan struct{}{}, trace: c.note}
		n.rn = raft.StartNode(raftConfig(id, p.storage()), peers)
		tr, err := transport.New(transport.Config{ClusterID: 0xbe7c, ID: id, ListenAddr: opts.Addrs[i],
			Raft: transport.NodeRaft{Node: n.rn}})
		if err != nil {
			return nil, err
		}
		trs = append(trs, tr)
		n.send = func(ms []pb.Message) { tr.Send(ms) }
		c.nodes = append(c.nodes, n)
		c.closeN = append(c.closeN, func() { _ = tr.Close() })
		c.closeR = append(c.closeR, func() { _ = p.close() })
	}
	for i, n := range c.nodes {
		for j, addr := range opts.Addrs {
			if j != i {
				_ = trs[i].AddPeer(uint64(j+1), addr)
			}
		}
		go n.run()
	}
	_ = c.nodes[0].rn.Campaign(context.Background())
	return c, nil
}

// Stats reports each voter's wal counters (fsyncs, batches), for working
// out fsyncs per commit (none with in-memory storage), and after a
// failover the survivors' role changes timed from the Kill.
func (c *cluster) Stats() string {
	var parts []string
	c.tmu.Lock()
	if len(c.events) > 0 {
		parts = append(parts, "after the kill: "+strings.Join(c.events, ", "))
	}
	c.tmu.Unlock()
	for _, n := range c.nodes {
		if w, ok := n.p.(walPersister); ok {
			st := w.st.Stats()
			parts = append(parts, fmt.Sprintf("n%d fsyncs=%d batches=%d", n.id, st.Fsyncs, st.Batches))
		}
	}
	return strings.Join(parts, "; ")
}
