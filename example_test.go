package raft_test

import (
	"context"
	"fmt"

	"github.com/raftkit/raft"
	pb "github.com/raftkit/raft/raftpb"
)

// newVoterStorage returns a storage that already holds the initial
// configuration: a snapshot at index 1 listing the voters. This is the
// recommended way to start a brand-new cluster.
func newVoterStorage(voters ...uint64) *raft.MemoryStorage {
	s := raft.NewMemoryStorage()
	snap := pb.Snapshot{Metadata: pb.SnapshotMetadata{
		Index:     1,
		Term:      1,
		ConfState: pb.ConfState{Voters: voters},
	}}
	if err := s.ApplySnapshot(snap); err != nil {
		panic(err)
	}
	return s
}

func exampleConfig(id uint64, s raft.Storage) *raft.Config {
	return &raft.Config{
		ID:              id,
		ElectionTick:    10,
		HeartbeatTick:   1,
		Storage:         s,
		MaxSizePerMsg:   1 << 20,
		MaxInflightMsgs: 256,
		Logger:          discardLogger{},
	}
}

// persist does step 1 of the Ready contract against a MemoryStorage.
func persist(s *raft.MemoryStorage, rd raft.Ready) {
	if !raft.IsEmptyHardState(rd.HardState) {
		if err := s.SetHardState(rd.HardState); err != nil {
			panic(err)
		}
	}
	if !raft.IsEmptySnap(rd.Snapshot) {
		if err := s.ApplySnapshot(rd.Snapshot); err != nil {
			panic(err)
		}
	}
	if err := s.Append(rd.Entries); err != nil {
		panic(err)
	}
}

// A single-voter group driven by hand: it elects itself, then a proposal
// goes through the log and comes back as a committed entry.
func ExampleRawNode() {
	storage := newVoterStorage(1)
	rn, err := raft.NewRawNode(exampleConfig(1, storage))
	if err != nil {
		panic(err)
	}
	if err := rn.Campaign(); err != nil {
		panic(err)
	}
	proposed := false
	for rn.HasReady() {
		rd := rn.Ready()
		persist(storage, rd)
		// A lone voter has nobody to send to; rd.Messages is empty.
		for _, e := range rd.CommittedEntries {
			if e.Type == pb.EntryNormal && len(e.Data) != 0 {
				fmt.Printf("applied %q at index %d\n", e.Data, e.Index)
			}
		}
		rn.Advance(rd)
		if !proposed && rn.Status().RaftState == raft.StateLeader {
			fmt.Println("leader at term", rn.Status().Term)
			if err := rn.Propose([]byte("hello")); err != nil {
				panic(err)
			}
			proposed = true
		}
	}
	// Output:
	// leader at term 1
	// applied "hello" at index 3
}

// exampleMember is one node of an in-process cluster: a RawNode, its
// storage and what it has applied.
type exampleMember struct {
	rn      *raft.RawNode
	storage *raft.MemoryStorage
	applied []string
}

// Three nodes in one goroutine, with the network reduced to a slice of
// messages: node 1 is elected and replicates a proposal to everyone.
func ExampleRawNode_threeNodes() {
	members := map[uint64]*exampleMember{}
	for id := uint64(1); id <= 3; id++ {
		s := newVoterStorage(1, 2, 3)
		rn, err := raft.NewRawNode(exampleConfig(id, s))
		if err != nil {
			panic(err)
		}
		members[id] = &exampleMember{rn: rn, storage: s}
	}
	var network []pb.Message
	// handle runs every member's Ready loop until nothing is left to do,
	// delivering messages in the order they were sent.
	handle := func() {
		for busy := true; busy; {
			busy = false
			for id := uint64(1); id <= 3; id++ {
				m := members[id]
				for m.rn.HasReady() {
					busy = true
					rd := m.rn.Ready()
					persist(m.storage, rd)
					network = append(network, rd.Messages...)
					for _, e := range rd.CommittedEntries {
						if e.Type == pb.EntryNormal && len(e.Data) != 0 {
							m.applied = append(m.applied, string(e.Data))
						}
					}
					m.rn.Advance(rd)
				}
			}
			for len(network) != 0 {
				busy = true
				msg := network[0]
				network = network[1:]
				_ = members[msg.To].rn.Step(msg)
			}
		}
	}

	if err := members[1].rn.Campaign(); err != nil {
		panic(err)
	}
	handle()
	if err := members[1].rn.Propose([]byte("x=1")); err != nil {
		panic(err)
	}
	handle()

	for id := uint64(1); id <= 3; id++ {
		st := members[id].rn.Status()
		fmt.Printf("node %d: %s, leader %d, applied %v\n", id, st.RaftState, st.Lead, members[id].applied)
	}
	// Output:
	// node 1: StateLeader, leader 1, applied [x=1]
	// node 2: StateFollower, leader 1, applied [x=1]
	// node 3: StateFollower, leader 1, applied [x=1]
}

// A Node runs the state machine on its own goroutine; the application's loop
// receives Readys from a channel and proposes from anywhere.
func ExampleStartNode() {
	storage := raft.NewMemoryStorage()
	n := raft.StartNode(exampleConfig(1, storage), []raft.Peer{{ID: 1}})
	defer n.Stop()

	// handle does one Ready's work and reports the commands it applied.
	handle := func(rd raft.Ready, applied chan<- string) {
		persist(storage, rd)
		for _, e := range rd.CommittedEntries {
			switch e.Type {
			case pb.EntryConfChange:
				var cc pb.ConfChange
				if err := cc.Unmarshal(e.Data); err != nil {
					panic(err)
				}
				n.ApplyConfChange(cc)
			case pb.EntryNormal:
				if len(e.Data) != 0 {
					applied <- string(e.Data)
				}
			}
		}
		n.Advance()
	}

	// The first Ready holds the bootstrap configuration. A node refuses to
	// campaign while configuration changes are committed but not applied,
	// so it is handled before campaigning.
	handle(<-n.Ready(), nil)
	ctx := context.Background()
	if err := n.Campaign(ctx); err != nil {
		panic(err)
	}

	applied := make(chan string, 1)
	done := make(chan struct{})
	defer close(done) // runs before n.Stop
	go func() {
		for {
			select {
			case rd := <-n.Ready():
				handle(rd, applied)
			case <-done:
				return
			}
		}
	}()
	// Propose waits until a leader is known and the proposal is taken.
	if err := n.Propose(ctx, []byte("hello")); err != nil {
		panic(err)
	}
	fmt.Println("applied", <-applied)
	// Output:
	// applied hello
}

// The Describe functions render raft's types as text; rafttest scenario
// files use the same format.
func ExampleDescribeMessage() {
	m := pb.Message{
		Type: pb.MsgApp, From: 1, To: 12, Term: 3, LogTerm: 2, Index: 7, Commit: 7,
		Entries: []pb.Entry{{Term: 3, Index: 8, Data: []byte("put k v")}},
	}
	fmt.Println(raft.DescribeMessage(m, nil))
	sizeOnly := func(data []byte) string { return fmt.Sprintf("<%d bytes>", len(data)) }
	fmt.Println(raft.DescribeMessage(m, sizeOnly))
	// Output:
	// 1->c MsgApp Term:3 Log:2/7 Commit:7 Entries:[3/8 EntryNormal "put k v"]
	// 1->c MsgApp Term:3 Log:2/7 Commit:7 Entries:[3/8 EntryNormal <7 bytes>]
}

// discardLogger keeps the examples' output to what they print themselves.
type discardLogger struct{}

func (discardLogger) Debug(...interface{})            {}
func (discardLogger) Debugf(string, ...interface{})   {}
func (discardLogger) Error(...interface{})            {}
func (discardLogger) Errorf(string, ...interface{})   {}
func (discardLogger) Info(...interface{})             {}
func (discardLogger) Infof(string, ...interface{})    {}
func (discardLogger) Warning(...interface{})          {}
func (discardLogger) Warningf(string, ...interface{}) {}
func (discardLogger) Fatal(v ...interface{})          { panic(fmt.Sprint(v...)) }
func (discardLogger) Fatalf(f string, v ...interface{}) {
	panic(fmt.Sprintf(f, v...))
}
func (discardLogger) Panic(v ...interface{}) { panic(fmt.Sprint(v...)) }
func (discardLogger) Panicf(f string, v ...interface{}) {
	panic(fmt.Sprintf(f, v...))
}
