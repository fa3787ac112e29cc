package wal

import (
	"sync"
	"testing"

	"github.com/raftkit/raft"
	pb "github.com/raftkit/raft/raftpb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestGroupCommit: writers that write while an fsync is running share the
// next one. The first fsync is held until all the others have written, so
// the count is exact: one for the first writer, one for everyone else.
func TestGroupCommit(t *testing.T) {
	s := openTest(t, t.TempDir(), nil)
	entered, release := make(chan struct{}), make(chan struct{})
	var once, releaseOnce sync.Once
	unblock := func() { releaseOnce.Do(func() { close(release) }) }
	// Should the test fail while the fsync is held, let it go, so that
	// closing the storage does not wait for it forever.
	defer unblock()
	s.beforeSync = func() {
		once.Do(func() {
			close(entered)
			<-release
		})
	}
	before := s.Stats().Fsyncs
	var wg sync.WaitGroup
	save := func(term uint64) {
		defer wg.Done()
		// Distinct terms: every write must be synced (raft.MustSync).
		// (assert, not require: this is not the test's goroutine.)
		assert.NoError(t, s.SetHardState(pb.HardState{Term: term}))
	}
	wg.Add(1)
	go save(1)
	<-entered
	const writers = 8
	wg.Add(writers)
	for k := 0; k < writers; k++ {
		go save(uint64(10 + k))
	}
	// Wait until every writer has written its batch; they are then all
	// waiting for durability behind the held fsync.
	waitUntil(t, "every writer's batch", func() bool { return s.Stats().Batches >= 1+writers })
	unblock()
	wg.Wait()
	require.Equal(t, uint64(2), s.Stats().Fsyncs-before, "nine synced writes, two fsyncs")
}

// TestMustSyncSemantics: only what raft.MustSync requires waits for an
// fsync; a commit-only HardState is written but not synced.
func TestMustSyncSemantics(t *testing.T) {
	s := openTest(t, t.TempDir(), nil)
	fsyncs := func() uint64 { return s.Stats().Fsyncs }
	steps := []struct {
		hs       pb.HardState
		ents     []pb.Entry
		wantSync bool
	}{
		{pb.HardState{Term: 1, Vote: 1}, nil, true},                   // new term and vote
		{pb.HardState{Term: 1, Vote: 1}, nil, false},                  // unchanged: nothing written
		{pb.HardState{Term: 1, Vote: 1, Commit: 0}, ents(1, 1), true}, // entries
		{pb.HardState{Term: 1, Vote: 1, Commit: 1}, nil, false},       // commit only
		{pb.HardState{}, nil, false},                                  // empty: nothing
		{pb.HardState{Term: 2, Vote: 1, Commit: 1}, nil, true},        // new term
	}
	for k, st := range steps {
		before := fsyncs()
		require.NoError(t, s.Save(st.hs, st.ents, pb.Snapshot{}))
		require.Equal(t, st.wantSync, fsyncs() > before, "step %d", k)
	}
	hs, _, err := s.InitialState()
	require.NoError(t, err)
	require.Equal(t, pb.HardState{Term: 2, Vote: 1, Commit: 1}, hs)
}

// TestPersistAppendsSharesOneSync: a run of MsgStorageAppend messages is
// persisted with one fsync and its responses come back in order.
func TestPersistAppendsSharesOneSync(t *testing.T) {
	s := openTest(t, t.TempDir(), nil)
	var msgs []pb.Message
	for k := uint64(1); k <= 10; k++ {
		msgs = append(msgs, pb.Message{
			Type: pb.MsgStorageAppend, To: raft.LocalAppendThread, From: 1,
			Term: 1, Vote: 1, Commit: k - 1,
			Entries:   ents(k, 1),
			Responses: []pb.Message{{Type: pb.MsgStorageAppendResp, To: 1, Index: k, LogTerm: 1}},
		})
	}
	before := s.Stats().Fsyncs
	resps, err := s.PersistAppends(msgs...)
	require.NoError(t, err)
	require.Equal(t, uint64(1), s.Stats().Fsyncs-before)
	require.Len(t, resps, 10)
	for k, r := range resps {
		require.Equal(t, uint64(k+1), r.Index)
	}
	last, _ := s.LastIndex()
	require.Equal(t, uint64(10), last)

	// Commit-only work needs no fsync, and the wrong message type is refused.
	before = s.Stats().Fsyncs
	_, err = s.PersistAppends(pb.Message{Type: pb.MsgStorageAppend, Term: 1, Vote: 1, Commit: 10})
	require.NoError(t, err)
	require.Equal(t, before, s.Stats().Fsyncs)
	_, err = s.PersistAppends(pb.Message{Type: pb.MsgApp})
	require.Error(t, err)
}
