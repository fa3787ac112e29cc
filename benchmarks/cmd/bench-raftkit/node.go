package main

import (
	"context"
	"fmt"
	"log"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	raft "github.com/raftkit/raft"
	"github.com/raftkit/raft/benchmarks/shared"
	pb "github.com/raftkit/raft/raftpb"
	"github.com/raftkit/raft/transport"
	"github.com/raftkit/raft/wal"
)

// raftConfig is the same for raftkit and both etcd versions: etcd server's
// settings (1 MiB messages, 512 in flight), PreVote and CheckQuorum on,
// 100 ms ticks with a 1 s election timeout. raftkit also runs with
// FastFailover, which its README recommends with its transport (the
// transport reports a peer whose stream breaks; etcd's raft has no such
// option).
func raftConfig(id uint64, st raft.Storage, async bool) *raft.Config {
	return &raft.Config{
		AsyncStorageWrites:        async,
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
	send    func([]pb.Message)
	opts    shared.Options
	leader  atomic.Bool
	killed  atomic.Bool
	stopc   chan struct{}
	done    chan struct{}
	mu      sync.Mutex
	waiters map[uint64]chan struct{}
	cs      pb.ConfState
	applied uint64
	snapAt  uint64
	// proposals waiting to be handed over as one batch (-batch-proposals)
	bmu        sync.Mutex
	pending    []pb.Entry
	submitting bool
	// trace, if set, notes role changes and applies (failover timing).
	trace func(n *node, event string)
	// at, when set, persists the MsgStorageAppend messages of raft's
	// AsyncStorageWrites (see handleAsync); nil: the synchronous loop.
	at *wal.AppendThread
	// outBuf (Ready loop) and delivBuf (append thread) collect the
	// messages of one round for send, which copies them: reused, so that
	// the fsync loop allocates no slice per round.
	outBuf, delivBuf []pb.Message
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
			if n.at != nil {
				if err := n.handleAsync(rd); err != nil {
					log.Printf("node %d: %v", n.id, err)
					return
				}
				continue
			}
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
	n.noteState(rd)
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
		n.applyAll(rd.CommittedEntries)
	}
	if err := n.p.save(rd); err != nil {
		return err
	}
	if !early {
		n.installed(rd.Snapshot)
		n.applyAll(rd.CommittedEntries)
	}
	if !lead {
		n.send(rd.Messages)
	}
	return n.maybeCompact()
}

// handleAsync handles a Ready of a node with AsyncStorageWrites: messages
// to peers leave at once (those that promise durability ride in the
// append's responses, which the append thread releases after its fsync),
// the append goes to the wal's append thread, and the committed entries
// are applied here, their responses stepped back into the node. No Advance:
// the responses take its place, so raft prepares the next Ready (a
// leader's next entries, a follower's next append) while the fsync runs.
func (n *node) handleAsync(rd raft.Ready) error {
	n.noteState(rd)
	out := n.outBuf[:0]
	var apply *pb.Message
	for i := range rd.Messages {
		m := &rd.Messages[i]
		switch m.To {
		case raft.LocalAppendThread:
			n.at.Send(*m)
		case raft.LocalApplyThread:
			apply = m
		default:
			out = append(out, *m)
		}
	}
	if len(out) > 0 {
		n.send(out)
	}
	n.outBuf = recycle(out)
	if !raft.IsEmptySnap(rd.Snapshot) {
		n.installed(rd.Snapshot)
	}
	if apply != nil {
		n.applyAll(apply.Entries)
		for _, r := range apply.Responses {
			if err := n.rn.Step(context.Background(), r); err != nil {
				return err
			}
		}
	}
	return n.maybeCompact()
}

// recycle empties a message buffer for the next round, dropping its
// references to entries so the buffer does not keep them alive.
func recycle(ms []pb.Message) []pb.Message {
	clear(ms)
	return ms[:0]
}

// installed records a snapshot installed from the leader as the applied
// state (the state machine is a counter: nothing else to restore).
func (n *node) installed(snap pb.Snapshot) {
	n.cs = snap.Metadata.ConfState
	n.applied = snap.Metadata.Index
	n.snapAt = n.applied
}

// maybeCompact snapshots and compacts once SnapshotEvery entries were
// applied since the last snapshot. With async writes a snapshot installed
// from the leader counts as applied when its Ready arrives, while the append
// thread may not have stored it yet: compaction waits until the storage
// holds the applied index.
func (n *node) maybeCompact() error {
	if n.applied-n.snapAt < n.opts.SnapshotEvery {
		return nil
	}
	if last, err := n.p.storage().LastIndex(); err != nil || last < n.applied {
		return nil
	}
	if err := n.p.snapshot(n.applied, n.cs, n.opts.KeepEntries); err != nil {
		return err
	}
	n.snapAt = n.applied
	return nil
}

// noteState follows the node's role (and traces it after a Kill).
func (n *node) noteState(rd raft.Ready) {
	if rd.SoftState != nil {
		n.leader.Store(rd.SoftState.RaftState == raft.StateLeader)
		if n.trace != nil {
			n.trace(n, fmt.Sprintf("%v lead=%d", rd.SoftState.RaftState, rd.SoftState.Lead))
		}
	}
	if n.trace != nil && len(rd.CommittedEntries) > 0 && n.leader.Load() {
		n.trace(n, "applies")
	}
}

func (n *node) applyAll(ents []pb.Entry) {
	for _, e := range ents {
		n.apply(e)
	}
}

func (n *node) apply(e pb.Entry) {
	n.applied = e.Index
	switch e.Type {
	case pb.EntryNormal:
		if id := shared.PayloadID(e.Data); id != 0 {
			n.mu.Lock()
			ch := n.waiters[id]
			delete(n.waiters, id)
			n.mu.Unlock()
			if ch != nil {
				close(ch)
			}
		}
	case pb.EntryConfChange:
		var cc pb.ConfChange
		if err := cc.Unmarshal(e.Data); err == nil {
			n.cs = *n.rn.ApplyConfChange(cc)
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
	n.pending = append(n.pending, pb.Entry{Data: data})
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
			err = n.rn.Propose(ctx, batch[0].Data)
		} else {
			err = n.rn.Step(ctx, pb.Message{Type: pb.MsgProp, Entries: batch})
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
	trs    []*transport.Transport
	closeN []func() // per node: cut the network (crash point)
	closeR []func() // per node: release the rest

	// After a Kill, what the survivors did and when (see Stats).
	tmu      sync.Mutex
	killedAt time.Time
	events   []string
}

// note records a survivor's role change or first apply after a Kill,
// with the time since the Kill: where failover time goes (waiting for the
// election timeout, the PreVote and vote rounds, the first commit).
func (c *cluster) note(n *node, event string) {
	c.tmu.Lock()
	defer c.tmu.Unlock()
	if c.killedAt.IsZero() || len(c.events) >= 8 {
		return
	}
	if event == "applies" {
		for _, e := range c.events {
			if strings.HasSuffix(e, " applies") {
				return
			}
		}
	}
	ms := float64(time.Since(c.killedAt).Microseconds()) / 1000
	c.events = append(c.events, fmt.Sprintf("+%.1fms n%d %s", ms, n.id, event))
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
	c.tmu.Lock()
	c.killedAt = time.Now()
	c.tmu.Unlock()
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
