package multiraft

import (
	"fmt"
	"slices"

	"go.uber.org/zap"

	"github.com/raftkit/raft/raftpb"
)

// compactReq is a Compact call waiting for the group's worker.
type compactReq struct {
	index uint64
	data  []byte
}

// Compact asks group g to store data, the application's snapshot of its
// state machine at index (an index the application applied), and to
// discard the log up to it (Storage.Compact). It does not wait; a request
// the worker cannot honour (index not applied yet, or below a
// configuration change already applied, so that the configuration at
// index is not known) is dropped and counted in Stats.CompactsRefused.
func (h *Host) Compact(g GroupID, index uint64, data []byte) error {
	return h.submit(g, func(in *inbox) { in.compacts = append(in.compacts, compactReq{index, data}) })
}

// compact serves the compaction requests of a round, after its Ready was
// applied.
func (h *Host) compact(g *group, reqs []compactReq) {
	for _, r := range reqs {
		if err := h.compactOne(g, r); err != nil {
			h.stats.compactsRefused.Add(1)
			h.lg.Warn("compaction refused", zap.Uint64("group", uint64(g.id)), zap.Error(err))
		}
	}
}

func (h *Host) compactOne(g *group, r compactReq) error {
	applied := g.rn.BasicStatus().Applied
	first, err := g.st.FirstIndex()
	switch {
	case err != nil:
		return err
	case r.index > applied:
		return fmt.Errorf("index %d not applied (applied %d)", r.index, applied)
	case r.index < g.confIndex:
		return fmt.Errorf("index %d below the configuration change applied at %d", r.index, g.confIndex)
	case r.index < first:
		return nil // already compacted further
	}
	term, err := g.st.Term(r.index)
	if err != nil {
		return err
	}
	snap := raftpb.Snapshot{Data: r.data, Metadata: raftpb.SnapshotMetadata{
		Index: r.index, Term: term, ConfState: g.confState(),
	}}
	return h.cfg.Storage.Compact(g.id, snap)
}

// confState is the group's configuration as raft applied it.
func (g *group) confState() raftpb.ConfState {
	cfg := g.rn.Status().Config
	cs := raftpb.ConfState{
		Voters:         cfg.Voters[0].Slice(),
		VotersOutgoing: cfg.Voters[1].Slice(),
		AutoLeave:      cfg.AutoLeave,
	}
	for id := range cfg.Learners {
		cs.Learners = append(cs.Learners, id)
	}
	for id := range cfg.LearnersNext {
		cs.LearnersNext = append(cs.LearnersNext, id)
	}
	slices.Sort(cs.Learners)
	slices.Sort(cs.LearnersNext)
	return cs
}
