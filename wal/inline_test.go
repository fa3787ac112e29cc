package wal

import (
	"bytes"
	"runtime"
	"strconv"
	"sync"
	"testing"

	"github.com/raftkit/raft"
	pb "github.com/raftkit/raft/raftpb"
	"github.com/stretchr/testify/require"
)

// goid returns the calling goroutine's id (from its stack header), to tell
// on which goroutine deliver ran.
func goid() uint64 {
	var buf [64]byte
	b := buf[:runtime.Stack(buf[:], false)]
	b = bytes.TrimPrefix(b, []byte("goroutine "))
	id, _ := strconv.ParseUint(string(b[:bytes.IndexByte(b, ' ')]), 10, 64)
	return id
}

// appendMsg is a MsgStorageAppend of n entries from index first, whose
// response carries first as its Index, to tell deliveries apart.
func appendMsg(first uint64, n int) pb.Message {
	ents := make([]pb.Entry, n)
	for k := range ents {
		ents[k] = pb.Entry{Index: first + uint64(k), Term: 1, Data: []byte("x")}
	}
	return pb.Message{Type: pb.MsgStorageAppend, Term: 1, Entries: ents,
		Responses: []pb.Message{{Type: pb.MsgStorageAppendResp, To: 1, From: raft.LocalAppendThread, Index: first}}}
}

// TestAppendThreadInlineWhenIdle: by default every append goes to the
// thread's goroutine; with InlineWhenIdle, a small append sent to an idle
// thread is persisted and delivered on the sender's goroutine before Send
// returns, and a larger one still goes to the thread's goroutine.
func TestAppendThreadInlineWhenIdle(t *testing.T) {
	s := openTest(t, t.TempDir(), nil)
	type delivery struct{ goid, index uint64 }
	got := make(chan delivery, 4)
	at := NewAppendThread(s, func(ms []pb.Message) { got <- delivery{goid(), ms[0].Index} })
	t.Cleanup(func() { require.NoError(t, at.Stop()) })
	me := goid()

	at.Send(appendMsg(1, 1)) // off by default
	d := <-got
	require.NotEqual(t, me, d.goid, "inlined without InlineWhenIdle")
	// deliver ran before the thread went idle again: wait for that.
	waitUntil(t, "the thread idle", func() bool {
		at.mu.Lock()
		defer at.mu.Unlock()
		return !at.busy
	})

	at.InlineWhenIdle(1)
	at.Send(appendMsg(2, 1))
	select {
	case d := <-got:
		require.Equal(t, delivery{me, 2}, d, "delivered on the sender's goroutine")
	default:
		t.Fatal("Send returned before the inline append was delivered")
	}
	last, _ := s.LastIndex()
	require.Equal(t, uint64(2), last)

	at.Send(appendMsg(3, 2)) // over the limit: queued
	d = <-got
	require.NotEqual(t, me, d.goid, "a 2-entry append went inline")
	require.Equal(t, uint64(3), d.index)
}

// TestAppendThreadInlineKeepsOrder: an append sent while an inline one is
// being persisted (here: its delivery held) is queued and persisted and
// delivered after it, by the thread.
func TestAppendThreadInlineKeepsOrder(t *testing.T) {
	s := openTest(t, t.TempDir(), &Options{NoSync: true})
	var mu sync.Mutex
	var order []uint64
	entered, release := make(chan struct{}), make(chan struct{})
	delivered := make(chan struct{}, 4)
	at := NewAppendThread(s, func(ms []pb.Message) {
		if ms[0].Index == 1 {
			close(entered)
			<-release
		}
		mu.Lock()
		order = append(order, ms[0].Index)
		mu.Unlock()
		delivered <- struct{}{}
	})
	t.Cleanup(func() { require.NoError(t, at.Stop()) })
	at.InlineWhenIdle(8)
	go at.Send(appendMsg(1, 1))
	<-entered
	at.Send(appendMsg(2, 1)) // the thread is busy: must not go inline
	close(release)
	<-delivered
	<-delivered
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, []uint64{1, 2}, order)
	last, _ := s.LastIndex()
	require.Equal(t, uint64(2), last)
}
