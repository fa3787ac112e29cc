package wal

import (
	"bytes"
	"fmt"
	"math/rand"

	"github.com/raftkit/raft"
	pb "github.com/raftkit/raft/raftpb"
)

// A workload is a deterministic sequence of writes shaped like what a raft
// node does to its storage: appends at the current term, elections that
// overwrite an uncommitted suffix, commit-only HardState updates,
// compactions, snapshots taken and snapshots installed. Action k depends
// only on the seed, k and the storage's visible state, so a test can replay
// the sequence against a model (MemoryStorage) and know which states a
// crashed writer may have left behind.

// view is the part of a storage's state that the next action depends on.
type view struct {
	first, last uint64
	hs          pb.HardState
	snapIndex   uint64
	confState   pb.ConfState
}

func viewOf(s writableStorage) (view, error) {
	var v view
	var err error
	if v.first, err = s.FirstIndex(); err != nil {
		return v, err
	}
	if v.last, err = s.LastIndex(); err != nil {
		return v, err
	}
	if v.hs, v.confState, err = s.InitialState(); err != nil {
		return v, err
	}
	snap, err := s.Snapshot()
	v.snapIndex = snap.Metadata.Index
	return v, err
}

// action is one write: exactly one of a save (hs, ents, snap), a compaction
// or a snapshot creation, so that it is one batch in the log.
type action struct {
	hs      pb.HardState
	ents    []pb.Entry
	snap    pb.Snapshot
	compact uint64
	create  uint64 // snapshot index, with createData
	data    []byte
}

func (a action) String() string {
	switch {
	case a.compact != 0:
		return fmt.Sprintf("compact %d", a.compact)
	case a.create != 0:
		return fmt.Sprintf("create snapshot %d", a.create)
	case !raft.IsEmptySnap(a.snap):
		return fmt.Sprintf("install snapshot %d", a.snap.Metadata.Index)
	}
	first := uint64(0)
	if len(a.ents) > 0 {
		first = a.ents[0].Index
	}
	return fmt.Sprintf("save hs=%v ents=%d from %d", a.hs, len(a.ents), first)
}

// nextAction is action k of the workload with seed seed.
func nextAction(seed int64, k int, v view, appendOnly bool) action {
	rng := rand.New(rand.NewSource(seed*1_000_003 + int64(k)))
	term := max(v.hs.Term, 1)
	commit := v.hs.Commit
	payload := func() []byte {
		n := rng.Intn(200)
		if rng.Intn(20) == 0 {
			n = 1000 + rng.Intn(3000)
		}
		b := make([]byte, n)
		rng.Read(b)
		return b
	}
	appendAt := func(from, term uint64, n int) []pb.Entry {
		out := make([]pb.Entry, n)
		for j := range out {
			out[j] = pb.Entry{Index: from + uint64(j), Term: term, Data: payload()}
		}
		return out
	}
	r := rng.Intn(100)
	if appendOnly {
		r = rng.Intn(70)
	}
	switch {
	case r < 55 || v.hs.Term == 0:
		ents := appendAt(v.last+1, term, 1+rng.Intn(8))
		hs := pb.HardState{Term: term, Vote: v.hs.Vote, Commit: commit}
		if v.last > commit && rng.Intn(2) == 0 {
			hs.Commit = commit + 1 + uint64(rng.Int63n(int64(v.last-commit)))
		}
		return action{hs: hs, ents: ents}
	case r < 65:
		// An election: a new term, and the new leader's entries replace
		// part of the uncommitted suffix.
		lo := max(commit+1, v.first)
		from := lo + uint64(rng.Int63n(int64(v.last+2-lo)))
		hs := pb.HardState{Term: term + 1, Vote: uint64(1 + rng.Intn(3)), Commit: commit}
		return action{hs: hs, ents: appendAt(from, term+1, 1+rng.Intn(5))}
	case r < 75:
		if v.last > commit {
			commit += 1 + uint64(rng.Int63n(int64(v.last-commit)))
		}
		return action{hs: pb.HardState{Term: term, Vote: v.hs.Vote, Commit: commit}}
	case r < 85 && commit >= v.first:
		return action{compact: v.first + uint64(rng.Int63n(int64(commit-v.first+1)))}
	case r < 93 && commit > v.snapIndex && commit >= v.first-1:
		lo := max(v.snapIndex+1, v.first-1)
		return action{create: lo + uint64(rng.Int63n(int64(commit-lo+1))), data: payload()}
	case r < 97:
		// A snapshot from the leader, past the end of our log.
		idx := v.last + 1 + uint64(rng.Intn(5))
		cs := pb.ConfState{Voters: []uint64{1, 2, 3}, Learners: []uint64{uint64(4 + rng.Intn(3))}}
		snap := pb.Snapshot{Data: payload(), Metadata: pb.SnapshotMetadata{Index: idx, Term: term, ConfState: cs}}
		return action{hs: pb.HardState{Term: term, Vote: v.hs.Vote, Commit: idx}, snap: snap}
	}
	return action{hs: pb.HardState{Term: term, Vote: v.hs.Vote, Commit: commit}, ents: appendAt(v.last+1, term, 1)}
}

// do applies a to s: the WAL through Save (one batch), MemoryStorage
// through its separate calls.
func (a action) do(s writableStorage) error {
	switch {
	case a.compact != 0:
		return s.Compact(a.compact)
	case a.create != 0:
		_, err := s.CreateSnapshot(a.create, nil, a.data)
		return err
	}
	if w, ok := s.(*Storage); ok {
		return w.Save(a.hs, a.ents, a.snap)
	}
	if !raft.IsEmptySnap(a.snap) {
		if err := s.ApplySnapshot(a.snap); err != nil {
			return err
		}
	}
	if err := s.Append(a.ents); err != nil {
		return err
	}
	return s.SetHardState(a.hs)
}

// runWorkload applies actions from+1..to to s.
func runWorkload(s writableStorage, seed int64, from, to int, appendOnly bool) error {
	for k := from + 1; k <= to; k++ {
		v, err := viewOf(s)
		if err != nil {
			return err
		}
		a := nextAction(seed, k, v, appendOnly)
		if err := a.do(s); err != nil {
			return fmt.Errorf("action %d (%v): %w", k, a, err)
		}
	}
	return nil
}

// sameState reports how got differs from want, or nil.
func sameState(got, want writableStorage) error {
	gv, err := viewOf(got)
	if err != nil {
		return err
	}
	wv, err := viewOf(want)
	if err != nil {
		return err
	}
	if gv.first != wv.first || gv.last != wv.last || gv.hs != wv.hs || gv.snapIndex != wv.snapIndex {
		return fmt.Errorf("state %+v, want %+v", gv, wv)
	}
	gt, err1 := got.Term(gv.first - 1)
	wt, err2 := want.Term(wv.first - 1)
	if err1 != nil || err2 != nil || gt != wt {
		return fmt.Errorf("compaction term %d (%v), want %d (%v)", gt, err1, wt, err2)
	}
	gs, _ := got.Snapshot()
	ws, _ := want.Snapshot()
	if !bytes.Equal(gs.Data, ws.Data) || !sameMetadata(gs.Metadata, ws.Metadata) {
		return fmt.Errorf("snapshot %v, want %v", gs.Metadata, ws.Metadata)
	}
	if gv.last < gv.first {
		return nil
	}
	ge, err := got.Entries(gv.first, gv.last+1, 1<<40)
	if err != nil {
		return err
	}
	we, err := want.Entries(wv.first, wv.last+1, 1<<40)
	if err != nil {
		return err
	}
	for k := range we {
		if ge[k].Index != we[k].Index || ge[k].Term != we[k].Term || !bytes.Equal(ge[k].Data, we[k].Data) {
			return fmt.Errorf("entry %d/%d, want %d/%d (or data differs)", ge[k].Index, ge[k].Term, we[k].Index, we[k].Term)
		}
	}
	return nil
}

// modelAt returns a MemoryStorage after actions 1..n of the workload.
func modelAt(seed int64, n int, appendOnlyAfter int) *raft.MemoryStorage {
	m := raft.NewMemoryStorage()
	if err := runWorkload(m, seed, 0, min(n, appendOnlyAfter), false); err != nil {
		panic(err)
	}
	if n > appendOnlyAfter {
		if err := runWorkload(m, seed, appendOnlyAfter, n, true); err != nil {
			panic(err)
		}
	}
	return m
}
