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
	"github.com/raftkit/raft/wal"
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
		w, async := p.(walPersister)
		async = async && opts.AsyncStorage
		n.rn = raft.StartNode(raftConfig(id, p.storage(), async), peers)
		tr, err := transport.New(transport.Config{ClusterID: 0xbe7c, ID: id, ListenAddr: opts.Addrs[i],
			Raft: transport.NodeRaft{Node: n.rn}})
		if err != nil {
			return nil, err
		}
		trs = append(trs, tr)
		c.trs = append(c.trs, tr)
		n.send = func(ms []pb.Message) { tr.Send(ms) }
		if async {
			n.at = wal.NewAppendThread(w.st, n.deliver)
		}
		c.nodes = append(c.nodes, n)
		c.closeN = append(c.closeN, func() { _ = tr.Close() })
		c.closeR = append(c.closeR, func() {
			if n.at != nil {
				_ = n.at.Stop()
			}
			_ = p.close()
		})
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

// deliver hands on the responses the append thread releases once an
// append is durable: the local ones (the append's acknowledgement to this
// node's raft) are stepped, the rest (a follower's MsgAppResp, a vote) sent.
func (n *node) deliver(resps []pb.Message) {
	out := n.delivBuf[:0]
	for _, m := range resps {
		if m.To == n.id {
			_ = n.rn.Step(context.Background(), m)
		} else {
			out = append(out, m)
		}
	}
	if len(out) > 0 {
		n.send(out)
	}
	n.delivBuf = recycle(out)
}

// Stats reports each voter's wal counters (fsyncs, batches), for working
// out fsyncs per commit (none with in-memory storage), the messages its
// transport sent and dropped, and after a
// failover the survivors' role changes timed from the Kill.
func (c *cluster) Stats() string {
	var parts []string
	c.tmu.Lock()
	if len(c.events) > 0 {
		parts = append(parts, "after the kill: "+strings.Join(c.events, ", "))
	}
	c.tmu.Unlock()
	for k, n := range c.nodes {
		s := fmt.Sprintf("n%d", n.id)
		if w, ok := n.p.(walPersister); ok {
			st := w.st.Stats()
			s += fmt.Sprintf(" fsyncs=%d batches=%d", st.Fsyncs, st.Batches)
		}
		var sent, dropped, qdrops, reconnects uint64
		for _, ps := range c.trs[k].Stats().Peers {
			sent += ps.MsgsSent
			dropped += ps.MsgsDropped
			qdrops += ps.QueueDrops
			reconnects += ps.Reconnects
		}
		parts = append(parts, s+fmt.Sprintf(" sent=%d dropped=%d (queue full %d) reconnects=%d", sent, dropped, qdrops, reconnects))
	}
	return strings.Join(parts, "; ")
}
