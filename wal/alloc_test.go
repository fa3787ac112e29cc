package wal

import (
	"testing"

	"github.com/raftkit/raft"

	pb "github.com/raftkit/raft/raftpb"
	"github.com/stretchr/testify/require"
)

// TestSaveSteadyStateAllocs: once warmed up, a Save of a Ready's worth of
// entries and a new HardState reuses the storage's buffers and allocates
// nothing per call (the entry cache's array grows by doubling and the run
// index by one mark per markEvery entries, both rounding to 0 per call).
// Each allocation here is paid by every voter on every Ready.
func TestSaveSteadyStateAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	s := openTest(t, t.TempDir(), &Options{NoSync: true, NoPreallocate: true})
	data := make([]byte, 128)
	ents := make([]pb.Entry, 4)
	next := uint64(1)
	save := func() {
		for k := range ents {
			ents[k] = pb.Entry{Index: next, Term: 1, Data: data}
			next++
		}
		require.NoError(t, s.Save(pb.HardState{Term: 1, Commit: next - 1}, ents, pb.Snapshot{}))
	}
	for i := 0; i < 100; i++ {
		save()
	}
	if n := testing.AllocsPerRun(200, save); n > 0 {
		t.Errorf("Save allocates %.0f times per call in steady state, want 0", n)
	}
}

// TestAppendThreadSteadyStateAllocs: the append thread reuses its queue and
// the slice of responses it hands to deliver between groups, so a round of
// one MsgStorageAppend allocates nothing.
func TestAppendThreadSteadyStateAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	s := openTest(t, t.TempDir(), &Options{NoSync: true, NoPreallocate: true})
	delivered := make(chan struct{})
	at := NewAppendThread(s, func([]pb.Message) { delivered <- struct{}{} })
	t.Cleanup(func() { require.NoError(t, at.Stop()) })
	data := make([]byte, 128)
	ents := make([]pb.Entry, 4)
	resps := []pb.Message{{Type: pb.MsgStorageAppendResp, To: 1, From: raft.LocalAppendThread}}
	next := uint64(1)
	round := func() {
		for k := range ents {
			ents[k] = pb.Entry{Index: next, Term: 1, Data: data}
			next++
		}
		at.Send(pb.Message{Type: pb.MsgStorageAppend, Term: 1, Commit: next - 1, Entries: ents, Responses: resps})
		<-delivered
	}
	for i := 0; i < 100; i++ {
		round()
	}
	if n := testing.AllocsPerRun(200, round); n > 0 {
		t.Errorf("a round through the append thread allocates %.0f times, want 0", n)
	}
}
