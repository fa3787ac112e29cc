package wal

import (
	"errors"
	"testing"

	"github.com/raftkit/raft"
	pb "github.com/raftkit/raft/raftpb"
	"github.com/stretchr/testify/require"
)

// writableStorage is what MemoryStorage and the WAL Storage have in common:
// raft.Storage plus the write methods applications call. The conformance
// table drives only this, so both must behave alike on it.
type writableStorage interface {
	raft.Storage
	Append([]pb.Entry) error
	SetHardState(pb.HardState) error
	ApplySnapshot(pb.Snapshot) error
	CreateSnapshot(i uint64, cs *pb.ConfState, data []byte) (pb.Snapshot, error)
	Compact(i uint64) error
}

var (
	_ writableStorage = (*raft.MemoryStorage)(nil)
	_ writableStorage = (*Storage)(nil)
)

// ent builds entry (index, term) with a payload that identifies it.
func ent(index, term uint64) pb.Entry {
	return pb.Entry{Index: index, Term: term, Data: []byte{byte(index), byte(term), 'x'}}
}

// ents builds entries first, first+1, ... with the given terms.
func ents(first uint64, terms ...uint64) []pb.Entry {
	out := make([]pb.Entry, len(terms))
	for k, t := range terms {
		out[k] = ent(first+uint64(k), t)
	}
	return out
}

// step is one write of a conformance case and the error it must return.
type step struct {
	do   func(s writableStorage) error
	want error
}

func appendStep(es ...pb.Entry) step {
	return step{do: func(s writableStorage) error { return s.Append(es) }}
}

func compactStep(i uint64, want error) step {
	return step{do: func(s writableStorage) error { return s.Compact(i) }, want: want}
}

func snapStep(index, term uint64, voters []uint64, data string, want error) step {
	snap := pb.Snapshot{Data: []byte(data), Metadata: pb.SnapshotMetadata{
		Index: index, Term: term, ConfState: pb.ConfState{Voters: voters},
	}}
	return step{do: func(s writableStorage) error { return s.ApplySnapshot(snap) }, want: want}
}

func createStep(i uint64, cs *pb.ConfState, data string, want error) step {
	return step{do: func(s writableStorage) error {
		_, err := s.CreateSnapshot(i, cs, []byte(data))
		return err
	}, want: want}
}

func hardStateStep(term, vote, commit uint64) step {
	return step{do: func(s writableStorage) error {
		return s.SetHardState(pb.HardState{Term: term, Vote: vote, Commit: commit})
	}}
}

// wantLog checks the bounds and terms of the log: entries first..first+len(terms)-1
// with those terms, preceded by the compaction point (first-1, compactTerm).
func wantLog(t *testing.T, s writableStorage, first, compactTerm uint64, terms ...uint64) {
	t.Helper()
	fi, err := s.FirstIndex()
	require.NoError(t, err)
	li, err := s.LastIndex()
	require.NoError(t, err)
	require.Equal(t, first, fi, "first index")
	require.Equal(t, first+uint64(len(terms))-1, li, "last index")
	got, err := s.Term(first - 1)
	require.NoError(t, err)
	require.Equal(t, compactTerm, got, "term of the compaction point")
	if first > 1 {
		_, err = s.Term(first - 2)
		require.ErrorIs(t, err, raft.ErrCompacted)
	}
	_, err = s.Term(li + 1)
	require.ErrorIs(t, err, raft.ErrUnavailable)
	if len(terms) == 0 {
		_, err := s.Entries(first, first, 1<<30)
		require.ErrorIs(t, err, raft.ErrUnavailable)
		return
	}
	all, err := s.Entries(first, li+1, 1<<30)
	require.NoError(t, err)
	require.Len(t, all, len(terms))
	for k, e := range all {
		require.Equal(t, first+uint64(k), e.Index)
		require.Equal(t, terms[k], e.Term, "term of entry %d", e.Index)
		tm, err := s.Term(e.Index)
		require.NoError(t, err)
		require.Equal(t, terms[k], tm)
	}
}

type conformanceCase struct {
	name  string
	steps []step
	check func(t *testing.T, s writableStorage)
}

var conformanceCases = []conformanceCase{
	{
		name: "empty",
		check: func(t *testing.T, s writableStorage) {
			wantLog(t, s, 1, 0)
			hs, cs, err := s.InitialState()
			require.NoError(t, err)
			require.True(t, raft.IsEmptyHardState(hs))
			require.Empty(t, cs.Voters)
			snap, err := s.Snapshot()
			require.NoError(t, err)
			require.True(t, raft.IsEmptySnap(snap))
		},
	},
	{
		name:  "appends accumulate",
		steps: []step{appendStep(ents(1, 1, 1)...), appendStep(ents(3, 2, 2, 3)...)},
		check: func(t *testing.T, s writableStorage) { wantLog(t, s, 1, 0, 1, 1, 2, 2, 3) },
	},
	{
		name:  "a conflicting suffix is replaced",
		steps: []step{appendStep(ents(1, 1, 1, 1, 1, 1)...), appendStep(ents(4, 4, 4, 4, 4)...)},
		check: func(t *testing.T, s writableStorage) { wantLog(t, s, 1, 0, 1, 1, 1, 4, 4, 4, 4) },
	},
	{
		name:  "an overwrite can shorten the log",
		steps: []step{appendStep(ents(1, 1, 1, 2, 2, 2, 2)...), appendStep(ent(3, 5))},
		check: func(t *testing.T, s writableStorage) { wantLog(t, s, 1, 0, 1, 1, 5) },
	},
	{
		name: "entries at or below the compaction point are skipped",
		steps: []step{
			appendStep(ents(1, 1, 1, 1, 1)...), compactStep(3, nil),
			appendStep(ents(2, 1, 1, 7, 7, 7, 7)...),
		},
		check: func(t *testing.T, s writableStorage) { wantLog(t, s, 4, 1, 7, 7, 7, 7) },
	},
	{
		name: "compaction bounds",
		steps: []step{
			appendStep(ents(1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3)...),
			compactStep(4, nil), compactStep(4, raft.ErrCompacted), compactStep(2, raft.ErrCompacted),
			compactStep(6, nil),
		},
		check: func(t *testing.T, s writableStorage) {
			wantLog(t, s, 7, 3, 3, 3, 3, 3)
			_, err := s.Entries(6, 8, 1<<30)
			require.ErrorIs(t, err, raft.ErrCompacted)
		},
	},
	{
		name:  "compacting everything leaves an empty log that still grows",
		steps: []step{appendStep(ents(1, 1, 1, 2, 2)...), compactStep(4, nil), appendStep(ent(5, 3))},
		check: func(t *testing.T, s writableStorage) { wantLog(t, s, 5, 2, 3) },
	},
	{
		name:  "compacting everything",
		steps: []step{appendStep(ents(1, 1, 1, 2, 2)...), compactStep(4, nil)},
		check: func(t *testing.T, s writableStorage) { wantLog(t, s, 5, 2) },
	},
	{
		name:  "the last HardState wins",
		steps: []step{hardStateStep(1, 2, 0), appendStep(ents(1, 1, 1, 1)...), hardStateStep(3, 0, 2)},
		check: func(t *testing.T, s writableStorage) {
			hs, _, err := s.InitialState()
			require.NoError(t, err)
			require.Equal(t, pb.HardState{Term: 3, Vote: 0, Commit: 2}, hs)
		},
	},
	{
		name: "an applied snapshot replaces the log",
		steps: []step{
			appendStep(ents(1, 1, 1, 2, 2, 2)...),
			snapStep(10, 3, []uint64{1, 2, 3}, "state", nil),
			snapStep(10, 3, []uint64{1}, "again", raft.ErrSnapOutOfDate),
			snapStep(8, 3, []uint64{1}, "older", raft.ErrSnapOutOfDate),
			appendStep(ents(11, 3, 4)...),
		},
		check: func(t *testing.T, s writableStorage) {
			wantLog(t, s, 11, 3, 3, 4)
			snap, err := s.Snapshot()
			require.NoError(t, err)
			require.Equal(t, uint64(10), snap.Metadata.Index)
			require.Equal(t, uint64(3), snap.Metadata.Term)
			require.Equal(t, "state", string(snap.Data))
			_, cs, err := s.InitialState()
			require.NoError(t, err)
			require.Equal(t, []uint64{1, 2, 3}, cs.Voters)
		},
	},
	{
		name: "created snapshots and their bounds",
		steps: []step{
			appendStep(ents(1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3)...),
			createStep(5, &pb.ConfState{Voters: []uint64{4, 5}}, "five", nil),
			createStep(5, nil, "five again", raft.ErrSnapOutOfDate),
			createStep(3, nil, "older", raft.ErrSnapOutOfDate),
			compactStep(8, nil),
			createStep(7, nil, "below the compaction point", raft.ErrCompacted),
			createStep(8, nil, "eight", nil),
		},
		check: func(t *testing.T, s writableStorage) {
			wantLog(t, s, 9, 3, 3, 3)
			snap, err := s.Snapshot()
			require.NoError(t, err)
			require.Equal(t, uint64(8), snap.Metadata.Index)
			require.Equal(t, uint64(3), snap.Metadata.Term)
			require.Equal(t, []uint64{4, 5}, snap.Metadata.ConfState.Voters, "a nil ConfState keeps the previous one")
			require.Equal(t, "eight", string(snap.Data))
		},
	},
	{
		name:  "maxSize cuts the result but returns at least one entry",
		steps: []step{appendStep(ents(1, 1, 1, 1, 1, 1, 1)...)},
		check: func(t *testing.T, s writableStorage) {
			one := uint64((&pb.Entry{Index: 1, Term: 1, Data: []byte{1, 1, 'x'}}).Size())
			for _, tc := range []struct {
				max  uint64
				want int
			}{{0, 1}, {one - 1, 1}, {one, 1}, {2 * one, 2}, {3*one + 1, 3}, {1 << 30, 5}} {
				got, err := s.Entries(2, 7, tc.max)
				require.NoError(t, err)
				require.Len(t, got, tc.want, "maxSize %d", tc.max)
			}
			got, err := s.Entries(3, 3, 1<<30)
			require.NoError(t, err)
			require.Empty(t, got)
		},
	},
	{
		name:  "appending to a returned slice does not reach the storage",
		steps: []step{appendStep(ents(1, 1, 1, 1, 1)...)},
		check: func(t *testing.T, s writableStorage) {
			got, err := s.Entries(1, 3, 1<<30)
			require.NoError(t, err)
			_ = append(got, ent(3, 99))
			again, err := s.Entries(1, 4, 1<<30)
			require.NoError(t, err)
			require.Equal(t, uint64(1), again[2].Term)
		},
	},
}

// storageKind opens a fresh storage of one implementation; reopen, if not
// nil, closes and reopens it, for the implementations that persist.
type storageKind struct {
	name   string
	open   func(t *testing.T) writableStorage
	reopen func(t *testing.T, s writableStorage) writableStorage
}

func storageKinds() []storageKind {
	return []storageKind{
		{
			name: "memory",
			open: func(*testing.T) writableStorage { return raft.NewMemoryStorage() },
		},
		{
			name: "wal",
			open: func(t *testing.T) writableStorage { return openTest(t, t.TempDir(), &Options{SegmentSize: 1 << 20}) },
			reopen: func(t *testing.T, s writableStorage) writableStorage {
				w := s.(*Storage)
				require.NoError(t, w.Close())
				return openTest(t, w.Dir(), &Options{SegmentSize: 1 << 20})
			},
		},
		{
			// Tiny segments and no cache: every read goes to disk and
			// nearly every batch rotates.
			name: "wal-uncached-tiny-segments",
			open: func(t *testing.T) writableStorage {
				return openTest(t, t.TempDir(), &Options{SegmentSize: 200, CacheSize: -1})
			},
			reopen: func(t *testing.T, s writableStorage) writableStorage {
				w := s.(*Storage)
				require.NoError(t, w.Close())
				return openTest(t, w.Dir(), &Options{SegmentSize: 200, CacheSize: -1})
			},
		},
	}
}

// openTest opens a Storage that the test closes at its end.
func openTest(t testing.TB, dir string, opts *Options) *Storage {
	t.Helper()
	s, err := Open(dir, opts)
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	for _, kind := range storageKinds() {
		for _, tc := range conformanceCases {
			t.Run(kind.name+"/"+tc.name, func(t *testing.T) {
				s := kind.open(t)
				for k, st := range tc.steps {
					err := st.do(s)
					if st.want == nil {
						require.NoError(t, err, "step %d", k)
					} else {
						require.True(t, errors.Is(err, st.want), "step %d: got %v, want %v", k, err, st.want)
					}
				}
				tc.check(t, s)
				if kind.reopen != nil {
					tc.check(t, kind.reopen(t, s))
				}
			})
		}
	}
}
