package main

import (
	"context"
	"log"
	"sync"
	"sync/atomic"
	"time"

	"github.com/raftkit/raft/benchmarks/shared"
	raft "go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// raftConfig is the same as in bench-raftkit (this file is its node.go
// with etcd import paths, and raftpb v3.7's pointer types): etcd server settings (1 MiB messages,
// 512 in flight), PreVote and CheckQuorum, 100 ms ticks, 1 s elections.
func raftConfig(id uint64, st raft.Storage) *raft.Config {
	return &raft.Config{
		ID:                        id,
		ElectionTick:              10,
		HeartbeatTick:             1,
		Storage:                   st,
		MaxSizePerMsg:             1 << 20,
		MaxInflightMsgs:           512,
		MaxUncommittedEntriesSize: 1 << 30,
		PreVote:                   true,
		CheckQuorum:               true,
		Logger:                    quietLogger(),
	}
}

const tickInterval = 100 * time.Millisecond

// node is one voter: a raft.Node, its persister and its message sender,
// driven by the Ready loop in run.
type node struct {
	id      uint64
	rn      raft.Node
	p       persister
	send    func([]*pb.Message)
	opts    shared.Options
	leader  atomic.Bool
	killed  atomic.Bool
	stopc   chan struct{}
	done    chan struct{}
	mu      sync.Mutex
	waiters map[uint64]chan struct{}
	cs      *pb.ConfState
	applied uint64
	snapAt  uint64
	// proposals waiting to be handed over as one batch (-batch-proposals)
	bmu        sync.Mutex
	pending    []*pb.Entry
	submitting bool
}

func (n *node) run() {
	defer close(n.done)
	ticker := time.NewTicker(tickInterval)
	defer ticker.Stop()
	for {
		select {
		case <-ticker.C:
			n.rn.Tick()
		case rd := <-n.rn.Ready():
			if err := n.handle(rd); err != nil {
				log.Printf("node %d: %v", n.id, err)
				return
			}
			n.rn.Advance()
		case <-n.stopc:
			return
		}
	}
}

func (n *node) handle(rd raft.Ready) error {
	if rd.SoftState != nil {
		n.leader.Store(rd.SoftState.RaftState == raft.StateLeader)
	}
	// A leader sends before its own write, so that its fsync and the
	// followers' overlap (Raft thesis 10.2.1, as etcd server does): its
	// messages are appends and heartbeats, which need nothing of this
	// Ready on its disk, and a commit still needs a quorum's fsyncs.
	// Anyone else persists first: votes and acks must not leave before
	// the HardState and entries they promise are durable.
	lead := n.leader.Load()
	if lead {
		n.send(rd.Messages)
	}
	// Committed entries are durable on a quorum already, so they are
	// applied before this Ready's write rather than after its fsync, as
	// etcd server applies them concurrently with its WAL write. A Ready
	// carrying a snapshot is persisted first: its entries follow it.
	early := raft.IsEmptySnap(rd.Snapshot)
	if early {
		n.applyAll(rd)
	}
	if err := n.p.save(rd); err != nil {
		return err
	}
	if !early {
		n.cs = rd.Snapshot.GetMetadata().GetConfState()
		n.applied = rd.Snapshot.GetMetadata().GetIndex()
		n.snapAt = n.applied
		n.applyAll(rd)
	}
	if !lead {
		n.send(rd.Messages)
	}
	if n.applied-n.snapAt >= n.opts.SnapshotEvery {
		if err := n.p.snapshot(n.applied, n.cs, n.opts.KeepEntries); err != nil {
			return err
		}
		n.snapAt = n.applied
	}
	return nil
}

func (n *node) applyAll(rd raft.Ready) {
	for _, e := range rd.CommittedEntries {
		n.apply(e)
	}
}

func (n *node) apply(e *pb.Entry) {
	n.applied = e.GetIndex()
	switch e.GetType() {
	case pb.EntryNormal:
		if id := shared.PayloadID(e.GetData()); id != 0 {
			n.mu.Lock()
			ch := n.waiters[id]
			delete(n.waiters, id)
			n.mu.Unlock()
			if ch != nil {
				close(ch)
			}
		}
	case pb.EntryConfChange:
		cc := &pb.ConfChange{}
		if err := proto.Unmarshal(e.GetData(), cc); err == nil {
			n.cs = n.rn.ApplyConfChange(cc)
		}
	}
}

func (n *node) propose(ctx context.Context, data []byte) error {
	id := shared.PayloadID(data)
	ch := make(chan struct{})
	n.mu.Lock()
	n.waiters[id] = ch
	n.mu.Unlock()
	var err error
	if n.opts.BatchProposals {
		err = n.submit(ctx, data)
	} else {
		err = n.rn.Propose(ctx, data)
	}
	if err == nil {
		select {
		case <-ch:
			return nil
		case <-ctx.Done():
			err = ctx.Err()
		}
	}
	n.mu.Lock()
	delete(n.waiters, id)
	n.mu.Unlock()
	return err
}

// submit hands data to the node batched with concurrent proposals
// (-batch-proposals): the first proposer to find no batch on its way
// hands over everything pending as one MsgProp, and goes on until nothing
// is pending; the others return at once and wait for their entry to apply.
// A lone proposal goes through Propose, so that its refusal (no leader) is
// seen at once. A batch raft refuses is not reported: its proposers wait
// for their context, which only failovers meet.
func (n *node) submit(ctx context.Context, data []byte) error {
	n.bmu.Lock()
	n.pending = append(n.pending, &pb.Entry{Data: data})
	if n.submitting {
		n.bmu.Unlock()
		return nil
	}
	n.submitting = true
	own := true
	for {
		batch := n.pending
		n.pending = nil
		if len(batch) == 0 {
			n.submitting = false
			n.bmu.Unlock()
			return nil
		}
		n.bmu.Unlock()
		var err error
		if len(batch) == 1 {
			err = n.rn.Propose(ctx, batch[0].GetData())
		} else {
			err = n.rn.Step(ctx, &pb.Message{Type: pb.MsgProp.Enum(), Entries: batch})
		}
		if err != nil && own {
			n.bmu.Lock()
			n.submitting = false
			n.bmu.Unlock()
			return err
		}
		own = false
		n.bmu.Lock()
	}
}

// cluster is the three voters of one run.
type cluster struct {
	nodes  []*node
	closeN []func() // per node: cut the network (crash point)
	closeR []func() // per node: release the rest
}

func (c *cluster) Propose(ctx context.Context, data []byte) error {
	for _, n := range c.nodes {
		if n.leader.Load() && !n.killed.Load() {
			return n.propose(ctx, data)
		}
	}
	return shared.ErrNoLeader
}

func (c *cluster) WaitLeader(ctx context.Context) (int, error) {
	for {
		for i, n := range c.nodes {
			if n.leader.Load() && !n.killed.Load() {
				return i, nil
			}
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

func (c *cluster) Kill(i int) {
	n := c.nodes[i]
	if n.killed.Swap(true) {
		return
	}
	c.closeN[i]()
	go c.stop(i)
}

func (c *cluster) stop(i int) {
	n := c.nodes[i]
	n.rn.Stop()
	close(n.stopc)
	<-n.done
	c.closeR[i]()
}

func (c *cluster) Close() {
	for i, n := range c.nodes {
		if !n.killed.Swap(true) {
			c.closeN[i]()
			c.stop(i)
		}
	}
}
