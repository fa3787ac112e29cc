package raft

import (
	"io"
	"log"
	"testing"

	pb "github.com/raftkit/raft/raftpb"
)

// testNet is a group of RawNodes over MemoryStorage that exchange messages
// synchronously: deliver steps every queued message, handles each node's
// Ready the way an application would (persist, apply, Advance), and repeats
// until no message is left. Links can be cut, and message types dropped, to
// model partitions and loss. Nothing depends on time or on global
// randomness: every node's election-timeout jitter comes from its own
// seeded source.
type testNet struct {
	t     testing.TB
	nodes map[uint64]*testNode
	ids   []uint64
	// cut holds the directed links that lose every message.
	cut map[[2]uint64]bool
	// dropType loses every message of a type, on every link.
	dropType map[pb.MessageType]bool
	// drop, if set, loses every message it reports true for.
	drop func(m pb.Message) bool
	// queue holds messages in flight, delivered in order.
	queue []pb.Message
	// sent records every message delivered or lost, for assertions.
	sent []pb.Message
}

// testNode is one member of a testNet.
type testNode struct {
	rn      *RawNode
	storage *MemoryStorage
	// applied are the normal entries applied, in order.
	applied []pb.Entry
	// readStates are the answered reads handed out in Readys.
	readStates []ReadState
}

// r is the node's state machine.
func (n *testNode) r() *raft { return n.rn.raft }

// netConfig is the Config every testNet node starts from; adjust changes it
// per node before the node is created.
func netConfig(id uint64, s *MemoryStorage) *Config {
	return &Config{
		ID:              id,
		ElectionTick:    10,
		HeartbeatTick:   1,
		Storage:         s,
		MaxSizePerMsg:   noLimit,
		MaxInflightMsgs: 256,
		Logger:          discardLogger,
	}
}

// newTestNet returns voters 1..n (plus learners) bootstrapped from a
// snapshot at index 1, term 1, so every log starts at index 2.
func newTestNet(t testing.TB, voters int, learners []uint64, adjust func(*Config)) *testNet {
	cs := pb.ConfState{Learners: learners}
	for id := uint64(1); id <= uint64(voters); id++ {
		cs.Voters = append(cs.Voters, id)
	}
	nw := &testNet{t: t, nodes: map[uint64]*testNode{}, cut: map[[2]uint64]bool{}, dropType: map[pb.MessageType]bool{}}
	for _, id := range append(append([]uint64(nil), cs.Voters...), learners...) {
		nw.addNode(id, cs, adjust)
	}
	return nw
}

// addNode creates node id from a bootstrap snapshot holding cs.
func (nw *testNet) addNode(id uint64, cs pb.ConfState, adjust func(*Config)) *testNode {
	s := NewMemoryStorage()
	snap := pb.Snapshot{Metadata: pb.SnapshotMetadata{Index: 1, Term: 1, ConfState: cs}}
	if err := s.ApplySnapshot(snap); err != nil {
		nw.t.Fatal(err)
	}
	c := netConfig(id, s)
	if adjust != nil {
		adjust(c)
	}
	rn, err := NewRawNode(c)
	if err != nil {
		nw.t.Fatal(err)
	}
	rn.raft.useJitter(newLockedJitter(id).Intn)
	n := &testNode{rn: rn, storage: s}
	nw.nodes[id] = n
	nw.ids = append(nw.ids, id)
	return n
}

// node returns node id.
func (nw *testNet) node(id uint64) *testNode { return nw.nodes[id] }

// isolate cuts every link to and from id.
func (nw *testNet) isolate(id uint64) {
	for _, other := range nw.ids {
		if other != id {
			nw.cut[[2]uint64{id, other}] = true
			nw.cut[[2]uint64{other, id}] = true
		}
	}
}

// heal restores every link and stops dropping message types.
func (nw *testNet) heal() {
	nw.cut = map[[2]uint64]bool{}
	nw.dropType = map[pb.MessageType]bool{}
}

// handleReady processes every Ready of node id as a synchronous
// application would, queueing the outgoing messages.
func (nw *testNet) handleReady(id uint64) {
	n := nw.nodes[id]
	for n.rn.HasReady() {
		rd := n.rn.Ready()
		if !IsEmptySnap(rd.Snapshot) {
			if err := n.storage.ApplySnapshot(rd.Snapshot); err != nil {
				nw.t.Fatal(err)
			}
		}
		if err := n.storage.Append(rd.Entries); err != nil {
			nw.t.Fatal(err)
		}
		if !IsEmptyHardState(rd.HardState) {
			if err := n.storage.SetHardState(rd.HardState); err != nil {
				nw.t.Fatal(err)
			}
		}
		n.readStates = append(n.readStates, rd.ReadStates...)
		nw.apply(n, rd.CommittedEntries)
		nw.queue = append(nw.queue, rd.Messages...)
		n.rn.Advance(rd)
	}
}

// apply applies committed entries: conf changes take effect, normal ones
// are recorded.
func (nw *testNet) apply(n *testNode, ents []pb.Entry) {
	for _, e := range ents {
		switch e.Type {
		case pb.EntryNormal:
			if len(e.Data) > 0 {
				n.applied = append(n.applied, e)
			}
		case pb.EntryConfChange, pb.EntryConfChangeV2:
			cc, err := decodeConfChange(&e)
			if err != nil {
				nw.t.Fatal(err)
			}
			n.rn.ApplyConfChange(cc)
		}
	}
}

// settle handles Readys and delivers messages until the network is quiet.
func (nw *testNet) settle() {
	for i := 0; ; i++ {
		if i > 10000 {
			nw.t.Fatal("network does not settle")
		}
		for _, id := range nw.ids {
			nw.handleReady(id)
		}
		if len(nw.queue) == 0 {
			return
		}
		m := nw.queue[0]
		nw.queue = nw.queue[1:]
		nw.sent = append(nw.sent, m)
		if nw.cut[[2]uint64{m.From, m.To}] || nw.dropType[m.Type] || nw.nodes[m.To] == nil || (nw.drop != nil && nw.drop(m)) {
			continue
		}
		_ = nw.nodes[m.To].rn.Step(m)
	}
}

// campaign makes id campaign and settles.
func (nw *testNet) campaign(id uint64) {
	if err := nw.nodes[id].rn.Campaign(); err != nil {
		nw.t.Fatal(err)
	}
	nw.settle()
}

// propose proposes data at id and settles, returning Propose's error.
func (nw *testNet) propose(id uint64, data string) error {
	err := nw.nodes[id].rn.Propose([]byte(data))
	nw.settle()
	return err
}

// tick ticks id n times, settling after each tick.
func (nw *testNet) tick(id uint64, n int) {
	for i := 0; i < n; i++ {
		nw.nodes[id].rn.Tick()
		nw.settle()
	}
}

// tickAll ticks every node n times, settling after each round.
func (nw *testNet) tickAll(n int) {
	for i := 0; i < n; i++ {
		for _, id := range nw.ids {
			nw.nodes[id].rn.Tick()
		}
		nw.settle()
	}
}

// sentOfType returns the delivered or lost messages of type t, and forgets
// the record.
func (nw *testNet) sentOfType(t pb.MessageType) []pb.Message {
	var out []pb.Message
	for _, m := range nw.sent {
		if m.Type == t {
			out = append(out, m)
		}
	}
	nw.sent = nil
	return out
}

// leader returns the ID of the node that is leader in the highest term, or
// None.
func (nw *testNet) leader() uint64 {
	var lead, term uint64
	for _, id := range nw.ids {
		if r := nw.nodes[id].r(); r.state == StateLeader && r.Term >= term {
			lead, term = id, r.Term
		}
	}
	return lead
}

// mustLead fails unless id is leader.
func (nw *testNet) mustLead(id uint64) {
	nw.t.Helper()
	if r := nw.nodes[id].r(); r.state != StateLeader {
		nw.t.Fatalf("node %d is %s at term %d, want leader", id, r.state, r.Term)
	}
}

// discardLogger drops everything; tests use it to keep output quiet.
var discardLogger = &DefaultLogger{Logger: log.New(io.Discard, "", 0)}
