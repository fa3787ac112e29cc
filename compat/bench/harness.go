package bench

import (
	"fmt"
	"math"
)

// quiet is a Logger that drops everything: the benchmarks measure the
// library, not a log sink. Arguments are still boxed by the caller, as with
// any real logger whose level filters them.
type quiet struct{}

func (quiet) Debug(...interface{})            {}
func (quiet) Debugf(string, ...interface{})   {}
func (quiet) Error(...interface{})            {}
func (quiet) Errorf(string, ...interface{})   {}
func (quiet) Info(...interface{})             {}
func (quiet) Infof(string, ...interface{})    {}
func (quiet) Warning(...interface{})          {}
func (quiet) Warningf(string, ...interface{}) {}
func (quiet) Fatal(v ...interface{})          { panic(fmt.Sprint(v...)) }
func (quiet) Fatalf(f string, v ...interface{}) {
	panic(fmt.Sprintf(f, v...))
}
func (quiet) Panic(v ...interface{}) { panic(fmt.Sprint(v...)) }
func (quiet) Panicf(f string, v ...interface{}) {
	panic(fmt.Sprintf(f, v...))
}

// config is the configuration every benchmark node uses: generous flow
// control, so that the window never throttles a batch of 256 proposals.
func config(id uint64, s *MemoryStorage) *Config {
	return &Config{
		ID:              id,
		ElectionTick:    10,
		HeartbeatTick:   1,
		Storage:         s,
		MaxSizePerMsg:   1 << 20,
		MaxInflightMsgs: 256,
		// Unlimited, so that 64 KiB payloads in batches of 256 pass.
		MaxUncommittedEntriesSize: 0,
		MaxCommittedSizePerReady:  math.MaxUint64,
		Logger:                    quiet{},
	}
}

// seededStorage returns a MemoryStorage holding a snapshot at index 1, term
// 1, with voters 1..n: every node starts from the same configuration without
// bootstrap entries.
func seededStorage(n int) *MemoryStorage {
	s := NewMemoryStorage()
	voters := make([]uint64, n)
	for i := range voters {
		voters[i] = uint64(i + 1)
	}
	snap := Snapshot{}
	snap.Metadata.Index, snap.Metadata.Term = 1, 1
	snap.Metadata.ConfState = ConfState{Voters: voters}
	if err := s.ApplySnapshot(snap); err != nil {
		panic(err)
	}
	return s
}

// cluster is n RawNodes in one goroutine, each with a MemoryStorage, with
// messages delivered synchronously. Node i+1 is nodes[i].
type cluster struct {
	nodes   []*RawNode
	stores  []*MemoryStorage
	applied []uint64
	inbox   [][]Message
	spare   [][]Message // emptied inboxes, reused to keep the harness quiet
	reads   int         // ReadStates seen
	rounds  int
}

// newCluster returns a cluster of n voters in which node 1 leads and has
// committed its first entry.
func newCluster(n int) *cluster {
	c := &cluster{
		nodes:   make([]*RawNode, n),
		stores:  make([]*MemoryStorage, n),
		applied: make([]uint64, n),
		inbox:   make([][]Message, n),
		spare:   make([][]Message, n),
	}
	for i := range c.nodes {
		c.stores[i] = seededStorage(n)
		rn, err := NewRawNode(config(uint64(i+1), c.stores[i]))
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
// messages for delivery, apply, Advance. It reports whether there was one.
func (c *cluster) handle(i int) bool {
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
	c.reads += len(rd.ReadStates)
	rn.Advance(rd)
	return true
}

// deliver steps node i's queued messages into it, and reports whether there
// were any.
func (c *cluster) deliver(i int) bool {
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

// settle runs Readys and deliveries until nothing moves, and compacts the
// storages now and then so that they stay small, as a real application's
// would.
func (c *cluster) settle() {
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
	if c.rounds%256 == 0 {
		c.compact()
	}
}

// compact drops every store's applied prefix.
func (c *cluster) compact() {
	for i, s := range c.stores {
		compactTo(s, c.applied[i])
	}
}

// proposeAndCommit proposes k payloads on the leader and settles, checking
// that every node applied them.
func (c *cluster) proposeAndCommit(k int, data []byte) {
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

// compactTo drops s's log up to index, if that drops anything.
func compactTo(s *MemoryStorage, index uint64) {
	first, err := s.FirstIndex()
	if err != nil {
		panic(err)
	}
	if index >= first {
		if err := s.Compact(index); err != nil {
			panic(err)
		}
	}
}
