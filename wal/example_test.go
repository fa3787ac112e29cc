package wal_test

import (
	"fmt"
	"io"
	"log"
	"os"

	"github.com/raftkit/raft"
	pb "github.com/raftkit/raft/raftpb"
	"github.com/raftkit/raft/wal"
)

// A one-voter group keeps its log in a wal directory: each Ready is saved
// before its committed entries are applied, and after a restart the
// directory gives raft back its HardState and entries.
func Example() {
	dir, err := os.MkdirTemp("", "wal-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	s, err := wal.Open(dir, nil)
	if err != nil {
		log.Fatal(err)
	}
	// A new log starts from the cluster's initial configuration, held as
	// a snapshot at index 1; a reopened one already has it.
	if last, _ := s.LastIndex(); last == 0 {
		boot := pb.Snapshot{Metadata: pb.SnapshotMetadata{Index: 1, Term: 1, ConfState: pb.ConfState{Voters: []uint64{1}}}}
		if err := s.ApplySnapshot(boot); err != nil {
			log.Fatal(err)
		}
	}
	rn, err := raft.NewRawNode(&raft.Config{
		ID: 1, ElectionTick: 10, HeartbeatTick: 1, Storage: s,
		MaxSizePerMsg: 1 << 20, MaxInflightMsgs: 256,
		Logger: &raft.DefaultLogger{Logger: log.New(io.Discard, "", 0)},
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := rn.Campaign(); err != nil {
		log.Fatal(err)
	}
	proposed := false
	for applied := 0; applied < 1; {
		rd := rn.Ready()
		// Save returns once what raft.MustSync(rd) requires is on disk;
		// only then may rd.Messages leave (a one-voter group sends none).
		if err := s.Save(rd.HardState, rd.Entries, rd.Snapshot); err != nil {
			log.Fatal(err)
		}
		for _, e := range rd.CommittedEntries {
			if e.Type == pb.EntryNormal && len(e.Data) > 0 {
				fmt.Printf("applied %q at index %d\n", e.Data, e.Index)
				applied++
			}
		}
		rn.Advance(rd)
		if !proposed && rn.Status().RaftState == raft.StateLeader {
			if err := rn.Propose([]byte("hello")); err != nil {
				log.Fatal(err)
			}
			proposed = true
		}
	}
	if err := s.Close(); err != nil {
		log.Fatal(err)
	}

	// A restart: Open replays the directory.
	s, err = wal.Open(dir, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	hs, cs, _ := s.InitialState()
	last, _ := s.LastIndex()
	ents, _ := s.Entries(last, last+1, 1<<20)
	fmt.Printf("after restart: term %d, commit %d, voters %v, last entry %q\n", hs.Term, hs.Commit, cs.Voters, ents[0].Data)
	// Output:
	// applied "hello" at index 3
	// after restart: term 1, commit 3, voters [1], last entry "hello"
}
