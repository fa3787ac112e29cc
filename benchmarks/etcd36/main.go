// Command bench-etcd runs the cross-library workload against etcd/raft with
// the storage etcd itself runs (server/v3/storage/wal for durability,
// MemoryStorage for reads) and the shared framing transport. The same
// source builds against v3.6 (module etcd36) and v3.7 (module etcd37).
package main

import (
	"context"
	"log"
	"path/filepath"
	"strconv"

	"github.com/raftkit/raft/benchmarks/shared"
	raft "go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
)

func main() { shared.Main(libName, build) }

func build(opts shared.Options) (shared.Cluster, error) {
	c := &cluster{}
	var trs []*shared.Transport
	peers := []raft.Peer{{ID: 1}, {ID: 2}, {ID: 3}}
	for i := range opts.Addrs {
		id := uint64(i + 1)
		p, err := newPersister(filepath.Join(opts.Dir, "n"+strconv.Itoa(i+1)), opts.Durable)
		if err != nil {
			return nil, err
		}
		n := &node{id: id, p: p, opts: opts, stopc: make(chan struct{}), done: make(chan struct{}),
			waiters: map[uint64]chan struct{}{}}
		n.rn = raft.StartNode(raftConfig(id, p.storage()), peers)
		rn := n.rn
		recv := func(b []byte) {
			var m pb.Message
			if err := m.Unmarshal(b); err != nil {
				log.Printf("node %d: dropping a bad message: %v", id, err)
				return
			}
			_ = rn.Step(context.Background(), m)
		}
		// Reported from another goroutine: Send runs in the Ready loop,
		// which the node's ReportUnreachable would wait for.
		dropped := func(to uint64) { go rn.ReportUnreachable(to) }
		tr, err := shared.NewTransport(id, opts.Addrs[i], recv, dropped)
		if err != nil {
			return nil, err
		}
		trs = append(trs, tr)
		n.send = func(ms []pb.Message) {
			for _, m := range ms {
				tr.Send(m.To, m.Marshal) // a method value: a copy of m
			}
		}
		c.nodes = append(c.nodes, n)
		c.closeN = append(c.closeN, tr.Close)
		c.closeR = append(c.closeR, func() { _ = p.close() })
	}
	for i, n := range c.nodes {
		for j, addr := range opts.Addrs {
			if j != i {
				trs[i].AddPeer(uint64(j+1), addr)
			}
		}
		go n.run()
	}
	_ = c.nodes[0].rn.Campaign(context.Background())
	return c, nil
}
