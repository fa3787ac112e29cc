// Command inmemory runs a three-member raft cluster inside one process, with
// no disk, no network and no clock: each member is a raft.RawNode over a
// raft.MemoryStorage, and this program is their application. It drives every
// member's Ready loop by hand (persist, send, apply, Advance), carries the
// messages between members through an in-memory queue, elects member 1,
// proposes a few commands and prints what each member applied.
//
//	go run ./examples/inmemory
//
// Everything happens in one goroutine in a fixed order, so the output is the
// same on every run.
package main

import (
	"fmt"
	"log"
	"strings"

	"github.com/raftkit/raft"
	"github.com/raftkit/raft/raftpb"
	"go.uber.org/zap"
)

// member is one raft member and its application state.
type member struct {
	id      uint64
	node    *raft.RawNode
	storage *raft.MemoryStorage
	applied []string // the commands applied, in log order
}

// cluster holds the members and the messages in flight between them.
type cluster struct {
	members map[uint64]*member
	order   []uint64 // member IDs, in the order they are driven
	inbox   []raftpb.Message
}

func main() {
	// raft logs every election step at Info; keep warnings and errors only.
	zc := zap.NewDevelopmentConfig()
	zc.Level = zap.NewAtomicLevelAt(zap.WarnLevel)
	lg := raft.NewZapLogger(zap.Must(zc.Build()))

	c, err := newCluster(lg, 1, 2, 3)
	if err != nil {
		log.Fatal(err)
	}
	// Member 1 starts an election at once instead of waiting for its
	// election timeout; delivering messages until the cluster is quiet
	// completes the election.
	if err := c.members[1].node.Campaign(); err != nil {
		log.Fatal(err)
	}
	if err := c.settle(); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("leader: member %d\n", c.members[2].node.Status().Lead)

	// Proposals may go to any member: a follower forwards them to the
	// leader. Here member 3 proposes, a follower.
	for _, cmd := range []string{"x=1", "y=2", "x=3"} {
		if err := c.members[3].node.Propose([]byte(cmd)); err != nil {
			log.Fatalf("propose %q: %v", cmd, err)
		}
	}
	if err := c.settle(); err != nil {
		log.Fatal(err)
	}
	for _, id := range c.order {
		m := c.members[id]
		fmt.Printf("member %d applied: %s\n", id, strings.Join(m.applied, " "))
	}
}

// newCluster creates one member per ID. Each storage starts from the same
// snapshot whose configuration names every member as a voter, which is how
// a new cluster is bootstrapped without configuration-change entries.
func newCluster(lg raft.Logger, ids ...uint64) (*cluster, error) {
	c := &cluster{members: map[uint64]*member{}, order: ids}
	for _, id := range ids {
		storage := raft.NewMemoryStorage()
		boot := raftpb.Snapshot{Metadata: raftpb.SnapshotMetadata{
			Index:     1,
			Term:      1,
			ConfState: raftpb.ConfState{Voters: ids},
		}}
		if err := storage.ApplySnapshot(boot); err != nil {
			return nil, err
		}
		node, err := raft.NewRawNode(&raft.Config{
			ID:              id,
			ElectionTick:    10,
			HeartbeatTick:   1,
			Storage:         storage,
			MaxSizePerMsg:   1 << 20,
			MaxInflightMsgs: 256,
			Logger:          lg,
		})
		if err != nil {
			return nil, err
		}
		c.members[id] = &member{id: id, node: node, storage: storage}
	}
	return c, nil
}

// settle handles every member's Ready and delivers every message until no
// member has work left. It gives up after a bound, which a correct cluster
// never reaches.
func (c *cluster) settle() error {
	for round := 0; round < 1000; round++ {
		busy := false
		for _, id := range c.order {
			m := c.members[id]
			if !m.node.HasReady() {
				continue
			}
			busy = true
			if err := c.handleReady(m); err != nil {
				return fmt.Errorf("member %d: %w", id, err)
			}
		}
		if len(c.inbox) > 0 {
			busy = true
			if err := c.deliver(); err != nil {
				return err
			}
		}
		if !busy {
			return nil
		}
	}
	return fmt.Errorf("cluster did not settle")
}

// handleReady is the Ready contract: persist, then send, then apply, then
// Advance.
func (c *cluster) handleReady(m *member) error {
	rd := m.node.Ready()
	// 1. Persist. (A durable storage writes and fsyncs here.)
	if !raft.IsEmptySnap(rd.Snapshot) {
		if err := m.storage.ApplySnapshot(rd.Snapshot); err != nil {
			return err
		}
	}
	if !raft.IsEmptyHardState(rd.HardState) {
		if err := m.storage.SetHardState(rd.HardState); err != nil {
			return err
		}
	}
	if err := m.storage.Append(rd.Entries); err != nil {
		return err
	}
	// 2. Send: only now, since a vote or an acknowledgement promises what
	// was just persisted.
	c.inbox = append(c.inbox, rd.Messages...)
	// 3. Apply the committed entries, in order.
	for _, e := range rd.CommittedEntries {
		if err := m.apply(e); err != nil {
			return err
		}
	}
	// 4. Advance.
	m.node.Advance(rd)
	return nil
}

// apply applies one committed entry to the member's state.
func (m *member) apply(e raftpb.Entry) error {
	switch e.Type {
	case raftpb.EntryNormal:
		if len(e.Data) > 0 { // empty: the entry a new leader appends
			m.applied = append(m.applied, string(e.Data))
		}
	case raftpb.EntryConfChange:
		var cc raftpb.ConfChange
		if err := cc.Unmarshal(e.Data); err != nil {
			return err
		}
		m.node.ApplyConfChange(cc)
	case raftpb.EntryConfChangeV2:
		var cc raftpb.ConfChangeV2
		if err := cc.Unmarshal(e.Data); err != nil {
			return err
		}
		m.node.ApplyConfChange(cc)
	}
	return nil
}

// deliver steps every queued message into its recipient. Messages the
// recipients send in answer are queued by their next Ready.
func (c *cluster) deliver() error {
	msgs := c.inbox
	c.inbox = nil
	for _, msg := range msgs {
		to, ok := c.members[msg.To]
		if !ok {
			continue // a real transport would drop it too
		}
		if err := to.node.Step(msg); err != nil {
			return fmt.Errorf("member %d: step %v: %w", msg.To, msg.Type, err)
		}
	}
	return nil
}
