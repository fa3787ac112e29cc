package shared_test

import (
	"fmt"
	"log"
	"os"

	pb "github.com/raftkit/raft/raftpb"
	"github.com/raftkit/raft/wal/shared"
)

// A host persists one round of Readys of all its groups with one SaveBatch
// (one write, one fsync), and after a restart finds every group as it was.
func Example() {
	dir, err := os.MkdirTemp("", "shared-wal-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	w, err := shared.Open(dir, nil)
	if err != nil {
		log.Fatal(err)
	}
	if err := w.CreateGroups(1, 2, 3); err != nil {
		log.Fatal(err)
	}
	// In a host, each update comes from one group's Ready: HardState,
	// Entries and Snapshot, saved before the Ready's messages are sent.
	var round []shared.GroupUpdate
	for _, id := range []uint64{1, 2, 3} {
		round = append(round, shared.GroupUpdate{
			GroupID:   id,
			HardState: pb.HardState{Term: 1, Vote: id, Commit: 1},
			Entries:   []pb.Entry{{Index: 1, Term: 1, Data: []byte(fmt.Sprintf("hello from %d", id))}},
		})
	}
	if err := w.SaveBatch(round); err != nil {
		log.Fatal(err)
	}
	w.Close()

	// After a restart, each group's view is its raft.Storage.
	w, err = shared.Open(dir, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer w.Close()
	for _, id := range w.GroupIDs() {
		g, _ := w.Group(id)
		hs, _, _ := g.InitialState()
		ents, _ := g.Entries(1, 2, 1<<20)
		fmt.Printf("group %d: vote %d, %q\n", id, hs.Vote, ents[0].Data)
	}
	// Output:
	// group 1: vote 1, "hello from 1"
	// group 2: vote 2, "hello from 2"
	// group 3: vote 3, "hello from 3"
}
