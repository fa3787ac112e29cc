package bench

import (
	"fmt"
)

// durableStore is a node's storage in the durable-path benchmark: raftkit
// runs on wal.Storage (in a temporary directory, fsync off so that CPU is
// measured), etcd on MemoryStorage, which is what etcd's own server hands
// raft as its Storage (it writes its WAL beside it). Both count the
// Storage.Entries calls raft makes.
type durableStore interface {
	Storage
	SetHardState(HardState) error
	Append([]Entry) error
	Compact(uint64) error
	// entriesCalls is the number of Storage.Entries calls so far.
	entriesCalls() int
	close() error
}

// durableCluster is n RawNodes on durable stores in one goroutine, with
// messages delivered synchronously, as cluster does on MemoryStorage.
type durableCluster struct {
	nodes   []*RawNode
	stores  []durableStore
	applied []uint64
	inbox   [][]Message
	spare   [][]Message
	rounds  int
}

// newDurableCluster returns n voters on stores made by open (i is the
// node's index), in which node 1 leads and has committed its first entry.
func newDurableCluster(n int, open func(i, n int) durableStore) *durableCluster {
	c := &durableCluster{
		nodes:   make([]*RawNode, n),
		stores:  make([]durableStore, n),
		applied: make([]uint64, n),
		inbox:   make([][]Message, n),
		spare:   make([][]Message, n),
	}
	for i := range c.nodes {
		c.stores[i] = open(i, n)
		cfg := config(uint64(i+1), nil)
		cfg.Storage = c.stores[i]
		rn, err := NewRawNode(cfg)
		if err != nil {
			panic(err)
		}
		c.nodes[i] = rn
	}
	if err := c.nodes[0].Campaign(); err != nil {
		panic(err)
	}
	c.settle()
	if st := c.nodes[0].BasicStatus(); st.RaftState != StateLeader {
		panic(fmt.Sprintf("node 1 did not win the election: %+v", st))
	}
	return c
}

// handle runs one Ready of node i, if it has one: persist, queue the
// messages, apply, Advance.
func (c *durableCluster) handle(i int) bool {
	rn := c.nodes[i]
	if !rn.HasReady() {
		return false
	}
	rd := rn.Ready()
	s := c.stores[i]
	if !IsEmptyHardState(rd.HardState) {
		if err := s.SetHardState(rd.HardState); err != nil {
			panic(err)
		}
	}
	if len(rd.Entries) != 0 {
		if err := s.Append(rd.Entries); err != nil {
			panic(err)
		}
	}
	for j := range rd.Messages {
		to := rd.Messages[j].To - 1
		c.inbox[to] = append(c.inbox[to], rd.Messages[j])
	}
	if n := len(rd.CommittedEntries); n != 0 {
		c.applied[i] = rd.CommittedEntries[n-1].Index
	}
	rn.Advance(rd)
	return true
}

// deliver steps node i's queued messages into it.
func (c *durableCluster) deliver(i int) bool {
	msgs := c.inbox[i]
	if len(msgs) == 0 {
		return false
	}
	c.inbox[i], c.spare[i] = c.spare[i][:0], msgs
	for j := range msgs {
		_ = c.nodes[i].Step(msgs[j])
		msgs[j] = Message{}
	}
	return true
}

// settle runs Readys and deliveries until nothing moves, compacting every
// store's applied prefix every 256 rounds.
func (c *durableCluster) settle() {
	for busy := true; busy; {
		busy = false
		for i := range c.nodes {
			if c.handle(i) {
				busy = true
			}
			if c.deliver(i) {
				busy = true
			}
		}
	}
	c.rounds++
	if c.rounds%256 != 0 {
		return
	}
	for i, s := range c.stores {
		first, err := s.FirstIndex()
		if err != nil {
			panic(err)
		}
		if c.applied[i] >= first {
			if err := s.Compact(c.applied[i]); err != nil {
				panic(err)
			}
		}
	}
}

// proposeAndCommit proposes k payloads on the leader and settles, checking
// that every node applied them.
func (c *durableCluster) proposeAndCommit(k int, data []byte) {
	for j := 0; j < k; j++ {
		if err := c.nodes[0].Propose(data); err != nil {
			panic(err)
		}
	}
	want := c.applied[0] + uint64(k)
	c.settle()
	for i, a := range c.applied {
		if a != want {
			panic(fmt.Sprintf("node %d applied %d, want %d", i+1, a, want))
		}
	}
}

// entriesCalls sums the Storage.Entries calls of every node.
func (c *durableCluster) entriesCalls() int {
	total := 0
	for _, s := range c.stores {
		total += s.entriesCalls()
	}
	return total
}

// close closes every store.
func (c *durableCluster) close() {
	for _, s := range c.stores {
		if err := s.close(); err != nil {
			panic(err)
		}
	}
}

// seedSnapshot is the snapshot every durable store starts from: index 1,
// term 1, voters 1..n.
func seedSnapshot(n int) Snapshot {
	voters := make([]uint64, n)
	for i := range voters {
		voters[i] = uint64(i + 1)
	}
	snap := Snapshot{}
	snap.Metadata.Index, snap.Metadata.Term = 1, 1
	snap.Metadata.ConfState = ConfState{Voters: voters}
	return snap
}
