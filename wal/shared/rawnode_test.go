package shared

import (
	"fmt"
	"io"
	"log"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/raftkit/raft"
	pb "github.com/raftkit/raft/raftpb"
)

var quietLogger = &raft.DefaultLogger{Logger: log.New(io.Discard, "", 0)}

// hostedGroup is one single-voter group of the test host.
type hostedGroup struct {
	rn      *raft.RawNode
	view    *Group
	applied []string // payloads applied, in order, across restarts
	seen    map[string]bool
}

// TestRawNodesShareOneWAL runs many single-voter groups, each a RawNode on
// its view of one WAL, the way a multi-group host does: every round it
// collects the Readys of all groups, persists them with one SaveBatch,
// then applies and advances each. The WAL is closed and reopened between
// rounds; whatever a group applied is in its log afterwards.
func TestRawNodesShareOneWAL(t *testing.T) {
	const groups = 30
	dir := t.TempDir()
	opts := &Options{SegmentSize: 32 << 10, MaxSegments: 4, GroupCacheSize: 512}
	hosted := map[uint64]*hostedGroup{}
	for round := 0; round < 3; round++ {
		w, err := Open(dir, opts)
		require.NoError(t, err)
		for id := uint64(1); id <= groups; id++ {
			if round == 0 {
				v, err := w.CreateGroup(id)
				require.NoError(t, err)
				require.NoError(t, v.ApplySnapshot(pb.Snapshot{Metadata: pb.SnapshotMetadata{Index: 1, Term: 1, ConfState: pb.ConfState{Voters: []uint64{1}}}}))
				hosted[id] = &hostedGroup{seen: map[string]bool{}}
			}
			startGroup(t, w, id, hosted[id])
		}
		ups := 0
		for step := 0; step < 60; step++ {
			ups += hostRound(t, w, hosted, step)
		}
		require.Positive(t, ups)
		require.NoError(t, w.Close())

		w, err = Open(dir, opts)
		require.NoError(t, err)
		for id, h := range hosted {
			v := mustGroup(t, w, id)
			first, _ := v.FirstIndex()
			last, _ := v.LastIndex()
			inLog := map[string]bool{}
			if last >= first {
				es, err := v.Entries(first, last+1, 1<<30)
				require.NoError(t, err)
				for _, e := range es {
					inLog[string(e.Data)] = true
				}
			}
			// Compaction keeps the last few applied entries.
			for _, p := range h.applied[max(0, len(h.applied)-3):] {
				require.True(t, inLog[p], "round %d, group %d: applied entry %q lost", round, id, p)
			}
			hs, _, _ := v.InitialState()
			require.GreaterOrEqual(t, hs.Commit, uint64(len(h.applied)))
			require.GreaterOrEqual(t, len(h.applied), 40*(round+1), "group %d made progress", id)
		}
		require.NoError(t, w.Close())
	}
}

func startGroup(t *testing.T, w *WAL, id uint64, h *hostedGroup) {
	v := mustGroup(t, w, id)
	hs, _, err := v.InitialState()
	require.NoError(t, err)
	first, _ := v.FirstIndex()
	rn, err := raft.NewRawNode(&raft.Config{
		ID: 1, ElectionTick: 10, HeartbeatTick: 1, Storage: v,
		MaxSizePerMsg: 1 << 20, MaxInflightMsgs: 256,
		Applied: max(hs.Commit, first-1), Logger: quietLogger,
	})
	require.NoError(t, err)
	require.NoError(t, rn.Campaign())
	h.rn, h.view = rn, v
}

// hostRound proposes to every leader, persists all Readys in one batch,
// then applies, compacts and advances. It returns the number of updates.
func hostRound(t *testing.T, w *WAL, hosted map[uint64]*hostedGroup, step int) int {
	var ups []GroupUpdate
	var readys []struct {
		h  *hostedGroup
		rd raft.Ready
	}
	for id, h := range hosted {
		if h.rn.BasicStatus().RaftState == raft.StateLeader {
			require.NoError(t, h.rn.Propose([]byte(fmt.Sprintf("g%d-s%d-%d", id, step, len(h.applied)))))
		}
		if !h.rn.HasReady() {
			continue
		}
		rd := h.rn.Ready()
		ups = append(ups, GroupUpdate{GroupID: id, HardState: rd.HardState, Entries: rd.Entries, Snapshot: rd.Snapshot})
		readys = append(readys, struct {
			h  *hostedGroup
			rd raft.Ready
		}{h, rd})
	}
	require.NoError(t, w.SaveBatch(ups))
	for _, r := range readys {
		for _, e := range r.rd.CommittedEntries {
			if e.Type == pb.EntryNormal && len(e.Data) > 0 && !r.h.seen[string(e.Data)] {
				r.h.seen[string(e.Data)] = true
				r.h.applied = append(r.h.applied, string(e.Data))
			}
		}
		if n := len(r.rd.CommittedEntries); n > 0 && step%7 == 0 {
			if at := r.rd.CommittedEntries[n-1].Index; at > 4 {
				if err := r.h.view.Compact(at - 3); err != nil {
					require.ErrorIs(t, err, raft.ErrCompacted)
				}
			}
		}
		r.h.rn.Advance(r.rd)
	}
	return len(ups)
}
