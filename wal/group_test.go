package wal

import (
	"bytes"
	"math/rand"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/raftkit/raft"
	pb "github.com/raftkit/raft/raftpb"
)

// appendMsg is a MsgStorageAppend of the entries of one workload save.
func appendMsg(hs pb.HardState, es []pb.Entry, snap pb.Snapshot) pb.Message {
	m := pb.Message{Type: pb.MsgStorageAppend, Term: hs.Term, Vote: hs.Vote, Commit: hs.Commit, Entries: es}
	if !raft.IsEmptySnap(snap) {
		m.Snapshot = &snap
	}
	return m
}

func hsOf(m pb.Message) pb.HardState {
	return pb.HardState{Term: m.Term, Vote: m.Vote, Commit: m.Commit}
}

// TestPersistAppendsWritesARunOnce: a run of messages is one write of as
// many batches; a snapshot install in the middle is written on its own and
// splits the run.
func TestPersistAppendsWritesARunOnce(t *testing.T) {
	s := openTest(t, t.TempDir(), nil)
	var msgs []pb.Message
	for k := uint64(1); k <= 8; k++ {
		msgs = append(msgs, appendMsg(pb.HardState{Term: 1, Vote: 1, Commit: k - 1}, ents(k, 1), pb.Snapshot{}))
	}
	before := s.Stats()
	_, err := s.PersistAppends(msgs...)
	require.NoError(t, err)
	after := s.Stats()
	require.Equal(t, uint64(8), after.Batches-before.Batches)
	require.Equal(t, uint64(1), after.Writes-before.Writes)

	snap := pb.Snapshot{Data: []byte("s"), Metadata: pb.SnapshotMetadata{Index: 20, Term: 2, ConfState: pb.ConfState{Voters: []uint64{1}}}}
	msgs = []pb.Message{
		appendMsg(pb.HardState{Term: 1, Vote: 1, Commit: 8}, ents(9, 1), pb.Snapshot{}),
		appendMsg(pb.HardState{Term: 2, Vote: 1, Commit: 9}, nil, pb.Snapshot{}),
		appendMsg(pb.HardState{Term: 2, Vote: 1, Commit: 20}, nil, snap),
		appendMsg(pb.HardState{Term: 2, Vote: 1, Commit: 20}, ents(21, 2, 2), pb.Snapshot{}),
		appendMsg(pb.HardState{Term: 2, Vote: 1, Commit: 21}, ents(23, 2), pb.Snapshot{}),
	}
	before = s.Stats()
	_, err = s.PersistAppends(msgs...)
	require.NoError(t, err)
	after = s.Stats()
	require.Equal(t, uint64(5), after.Batches-before.Batches)
	require.Equal(t, uint64(3), after.Writes-before.Writes)
	wantLog(t, s, 21, 2, 2, 2, 2)
}

// TestPersistAppendsGroupsMatchModel runs the workload with its saves
// handed to PersistAppends in runs of random length (compactions and
// snapshot creations in between), in segments small enough that runs
// straddle rotations, and compares with MemoryStorage after every run and
// after reopening.
func TestPersistAppendsGroupsMatchModel(t *testing.T) {
	for _, seed := range []int64{4, 5, 6} {
		rng := rand.New(rand.NewSource(seed))
		dir := t.TempDir()
		opts := &Options{SegmentSize: 4 << 10, CacheSize: 1 << 10}
		w := openTest(t, dir, opts)
		m := modelAt(seed, 0, 0)
		var run []pb.Message
		var writes, batches uint64
		flush := func(k int) {
			_, err := w.PersistAppends(run...)
			require.NoError(t, err, "seed %d, run ending at %d", seed, k)
			run = run[:0]
			require.NoError(t, sameState(w, m), "seed %d after the run ending at %d", seed, k)
		}
		runLen := 1 + rng.Intn(12)
		for k := 1; k <= 600; k++ {
			v, err := viewOf(m)
			require.NoError(t, err)
			a := nextAction(seed, k, v, false)
			if a.compact != 0 || a.create != 0 {
				flush(k - 1)
				require.NoError(t, a.do(m))
				require.NoError(t, a.do(w))
				continue
			}
			require.NoError(t, a.do(m))
			run = append(run, appendMsg(a.hs, a.ents, a.snap))
			if len(run) == runLen {
				flush(k)
				runLen = 1 + rng.Intn(12)
			}
			if k%150 == 0 {
				flush(k)
				st := w.Stats()
				writes, batches = writes+st.Writes, batches+st.Batches
				require.NoError(t, w.Close())
				w = openTest(t, dir, opts)
				require.NoError(t, sameState(w, m), "seed %d after reopening at %d", seed, k)
			}
		}
		require.Less(t, writes, batches, "seed %d: runs were not grouped", seed)
		t.Logf("seed %d: %d writes of %d batches", seed, writes, batches)
	}
}

// TestTornGroupKeepsWholeMessages: a group of messages written at once and
// cut short at any byte, or with its tail zeroed, recovers as the state
// after a prefix of whole messages: the longest whose bytes all survived.
func TestTornGroupKeepsWholeMessages(t *testing.T) {
	dir := t.TempDir()
	opts := &Options{NoPreallocate: true}
	s, err := Open(dir, opts)
	require.NoError(t, err)
	entsOf := func(lo, hi, term uint64) (out []pb.Entry) {
		for i := lo; i <= hi; i++ {
			out = append(out, pb.Entry{Index: i, Term: term, Data: []byte("entry")})
		}
		return out
	}
	_, err = s.PersistAppends(appendMsg(pb.HardState{Term: 1, Vote: 1, Commit: 1}, entsOf(1, 3, 1), pb.Snapshot{}))
	require.NoError(t, err)
	segs := segmentsIn(t, dir)
	require.Len(t, segs, 1)
	groupStart := len(recordStarts(t, segs[0]))
	// Each message of the group, and the state its whole prefix leaves:
	// appends, a commit-only change, an election overwriting a suffix.
	group := []pb.Message{
		appendMsg(pb.HardState{Term: 1, Vote: 1, Commit: 3}, entsOf(4, 5, 1), pb.Snapshot{}),
		appendMsg(pb.HardState{Term: 1, Vote: 1, Commit: 4}, nil, pb.Snapshot{}),
		appendMsg(pb.HardState{Term: 2, Vote: 2, Commit: 4}, entsOf(5, 7, 2), pb.Snapshot{}),
	}
	type state struct {
		last uint64
		hs   pb.HardState
		term uint64 // of entry 5, if any
	}
	want := []state{{3, pb.HardState{Term: 1, Vote: 1, Commit: 1}, 0}}
	want = append(want, state{5, hsOf(group[0]), 1}, state{5, hsOf(group[1]), 1}, state{7, hsOf(group[2]), 2})
	before := s.Stats().Writes
	_, err = s.PersistAppends(group...)
	require.NoError(t, err)
	require.Equal(t, uint64(1), s.Stats().Writes-before)
	require.NoError(t, s.Close())

	data, err := os.ReadFile(segs[0])
	require.NoError(t, err)
	starts := recordStarts(t, segs[0])
	// ends[k] is where message k's batch ends: after its batch-end record.
	var ends []int
	for _, off := range starts[groupStart:] {
		typ, _, n, err := decodeFrame(data[off:])
		require.NoError(t, err)
		if typ == recBatchEnd {
			ends = append(ends, off+n)
		}
	}
	require.Len(t, ends, len(group))
	lo, end := starts[groupStart], ends[len(ends)-1]
	for cut := lo; cut <= end; cut++ {
		for _, mode := range []string{"truncate", "zero"} {
			torn := append([]byte(nil), data...)
			if mode == "truncate" {
				torn = torn[:cut]
			} else {
				clear(torn[cut:end])
			}
			whole := 0 // messages whose bytes all survived (zeroing a zero changes nothing)
			for whole < len(ends) && len(torn) >= ends[whole] && bytes.Equal(torn[:ends[whole]], data[:ends[whole]]) {
				whole++
			}
			copyDir := t.TempDir()
			require.NoError(t, os.WriteFile(filepath.Join(copyDir, filepath.Base(segs[0])), torn, 0o644))
			r, err := Open(copyDir, opts)
			require.NoError(t, err, "%s at %d", mode, cut)
			var got state
			got.hs, _, err = r.InitialState()
			require.NoError(t, err)
			got.last, err = r.LastIndex()
			require.NoError(t, err)
			if got.last >= 5 {
				got.term, err = r.Term(5)
				require.NoError(t, err)
			}
			require.NoError(t, r.Close())
			require.Equal(t, want[whole], got, "%s at %d: want the state after %d whole messages", mode, cut, whole)
		}
	}
}
