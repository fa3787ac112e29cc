package wal

import (
	"fmt"
	"io"
	"log"
	"testing"

	"github.com/raftkit/raft"
	pb "github.com/raftkit/raft/raftpb"
	"github.com/stretchr/testify/require"
)

var quietLogger = &raft.DefaultLogger{Logger: log.New(io.Discard, "", 0)}

// bootstrapSingle gives an empty storage the membership {1}.
func bootstrapSingle(t *testing.T, s *Storage) {
	require.NoError(t, s.ApplySnapshot(pb.Snapshot{Metadata: pb.SnapshotMetadata{
		Index: 1, Term: 1, ConfState: pb.ConfState{Voters: []uint64{1}},
	}}))
}

// TestAsyncStorageWritesNode drives a RawNode with AsyncStorageWrites on
// WAL storage through an AppendThread, restarting node and storage midway:
// every entry the node applied before a restart is in the log afterwards.
func TestAsyncStorageWritesNode(t *testing.T) {
	dir := t.TempDir()
	opts := &Options{SegmentSize: 32 << 10, CacheSize: 4 << 10}
	var applied []string // payloads applied, in order, across restarts
	want := 0
	for round := 0; round < 3; round++ {
		s, err := Open(dir, opts)
		require.NoError(t, err)
		if round == 0 {
			bootstrapSingle(t, s)
		}
		rn, at, resps := startAsyncNode(t, s)
		want += 150
		applied = driveAsyncUntilApplied(t, rn, at, resps, applied, want)
		require.NoError(t, at.Stop())
		require.NoError(t, s.Close())
		checkAppliedDurable(t, dir, opts, round, applied)
	}
}

// startAsyncNode starts a single-voter RawNode with AsyncStorageWrites over
// s, an append thread feeding its responses into the returned channel, and
// campaigns.
func startAsyncNode(t *testing.T, s *Storage) (*raft.RawNode, *AppendThread, chan []pb.Message) {
	t.Helper()
	appliedIdx := uint64(1)
	if snap, _ := s.Snapshot(); snap.Metadata.Index > appliedIdx {
		appliedIdx = snap.Metadata.Index
	}
	rn, err := raft.NewRawNode(&raft.Config{
		ID: 1, ElectionTick: 10, HeartbeatTick: 1, Storage: s,
		MaxSizePerMsg: 1 << 20, MaxInflightMsgs: 256, AsyncStorageWrites: true,
		Applied: appliedIdx, Logger: quietLogger,
	})
	require.NoError(t, err)
	resps := make(chan []pb.Message, 1024)
	at := NewAppendThread(s, func(ms []pb.Message) { resps <- append([]pb.Message(nil), ms...) })
	require.NoError(t, rn.Campaign())
	return rn, at, resps
}

// driveAsyncUntilApplied proposes (at most 20 outstanding) and runs the
// Ready loop, routing local append/apply messages, until want distinct
// payloads are applied; it returns applied extended with the new ones.
func driveAsyncUntilApplied(t *testing.T, rn *raft.RawNode, at *AppendThread, resps chan []pb.Message, applied []string, want int) []string {
	t.Helper()
	// Entries applied in earlier rounds are re-applied from the log
	// (Applied is not persisted here); count only new ones.
	seen := map[string]bool{}
	for _, p := range applied {
		seen[p] = true
	}
	proposed := len(applied)
	for len(applied) < want {
		if st := rn.BasicStatus(); st.RaftState == raft.StateLeader && proposed < want && proposed-len(applied) < 20 {
			require.NoError(t, rn.Propose([]byte(fmt.Sprintf("p%d", proposed))))
			proposed++
		}
		if rn.HasReady() {
			rd := rn.Ready()
			for _, m := range rd.Messages {
				switch m.To {
				case raft.LocalAppendThread:
					at.Send(m)
				case raft.LocalApplyThread:
					for _, e := range m.Entries {
						if e.Type == pb.EntryNormal && len(e.Data) > 0 && !seen[string(e.Data)] {
							seen[string(e.Data)] = true
							applied = append(applied, string(e.Data))
						}
					}
					for _, r := range m.Responses {
						require.NoError(t, rn.Step(r))
					}
				default:
					t.Fatalf("single node sent %v", m)
				}
			}
			continue
		}
		if proposed < want && rn.BasicStatus().RaftState == raft.StateLeader && proposed-len(applied) < 20 {
			continue
		}
		for _, r := range <-resps {
			require.NoError(t, rn.Step(r))
		}
	}
	return applied
}

// checkAppliedDurable reopens dir and checks that every applied payload is
// in the log and the persisted commit index covers them.
func checkAppliedDurable(t *testing.T, dir string, opts *Options, round int, applied []string) {
	t.Helper()
	s, err := Open(dir, opts)
	require.NoError(t, err)
	first, _ := s.FirstIndex()
	last, _ := s.LastIndex()
	es, err := s.Entries(first, last+1, 1<<30)
	require.NoError(t, err)
	inLog := map[string]bool{}
	for _, e := range es {
		inLog[string(e.Data)] = true
	}
	for _, p := range applied {
		require.True(t, inLog[p], "round %d: applied entry %q lost", round, p)
	}
	hs, _, _ := s.InitialState()
	require.GreaterOrEqual(t, hs.Commit, uint64(len(applied)))
	require.NoError(t, s.Close())
}
