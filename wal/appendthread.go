package wal

import (
	"fmt"
	"sync"

	"github.com/raftkit/raft"
	pb "github.com/raftkit/raft/raftpb"
)

// PersistAppends does the work of MsgStorageAppend messages (produced by a
// RawNode or Node with Config.AsyncStorageWrites), in order: each message's
// snapshot, entries and HardState (carried in its Term, Vote and Commit
// fields, all zero when unchanged) are saved as by Save. It returns the
// messages' Responses, in order, once every write that raft.MustSync says
// must be durable is durable; all the messages share that one wait, so a
// run of appends costs one fsync. The caller delivers the responses:
// those addressed to the local node are stepped into it, the others sent.
//
// On error nothing is returned; writes before the failing message may have
// been made, which is harmless since none was acknowledged.
func (s *Storage) PersistAppends(msgs ...pb.Message) ([]pb.Message, error) {
	return s.persistAppends(nil, msgs)
}

// persistAppends is PersistAppends appending the responses to resps, so
// that the append thread can reuse one slice for them.
func (s *Storage) persistAppends(resps []pb.Message, msgs []pb.Message) ([]pb.Message, error) {
	var (
		waitFor  uint64
		obsolete bool
	)
	for k := range msgs {
		m := &msgs[k]
		if m.Type != pb.MsgStorageAppend {
			return nil, fmt.Errorf("wal: PersistAppends got a %v message", m.Type)
		}
		var snap pb.Snapshot
		if m.Snapshot != nil {
			snap = *m.Snapshot
		}
		hs := pb.HardState{Term: m.Term, Vote: m.Vote, Commit: m.Commit}
		end, mustSync, err := s.save(hs, m.Entries, snap)
		if err != nil {
			return nil, err
		}
		if mustSync {
			waitFor = end
		}
		obsolete = obsolete || !raft.IsEmptySnap(snap)
		resps = append(resps, m.Responses...)
	}
	if obsolete {
		if err := s.removeObsolete(); err != nil {
			return nil, err
		}
	} else if err := s.waitDurable(waitFor); err != nil {
		return nil, err
	}
	return resps, nil
}

// AppendThread is the append thread of Config.AsyncStorageWrites, backed
// by a Storage: a goroutine that takes MsgStorageAppend messages in the
// order they are sent, persists them and hands their responses to deliver
// only after they are durable. Whatever queued up while an fsync ran is
// persisted together and synced once (group commit across Readys).
type AppendThread struct {
	s       *Storage
	deliver func([]pb.Message)

	mu    sync.Mutex
	cond  *sync.Cond
	queue []pb.Message
	// spare is the array of the group last persisted, cleared, which
	// becomes the next queue: Send and the loop trade two arrays back and
	// forth instead of growing a new queue per group. Only the loop
	// touches it.
	spare   []pb.Message
	resps   []pb.Message // the responses handed to deliver; loop only
	stopped bool
	err     error
	done    chan struct{}
}

// NewAppendThread starts an append thread persisting to s. deliver is
// called from the thread's goroutine with each group's responses, in order.
// The slice is the thread's and is reused for the next group: deliver must
// not keep it after it returns (the messages are values; copy those kept).
func NewAppendThread(s *Storage, deliver func([]pb.Message)) *AppendThread {
	t := &AppendThread{s: s, deliver: deliver, done: make(chan struct{})}
	t.cond = sync.NewCond(&t.mu)
	go t.loop()
	return t
}

// Send queues a MsgStorageAppend. It never blocks. After a failure, or
// after Stop, messages are dropped (and never acknowledged).
func (t *AppendThread) Send(m pb.Message) {
	t.mu.Lock()
	if !t.stopped && t.err == nil {
		t.queue = append(t.queue, m)
		t.cond.Signal()
	}
	t.mu.Unlock()
}

// Stop persists what is queued, stops the goroutine and returns the first
// error the thread met, if any.
func (t *AppendThread) Stop() error {
	t.mu.Lock()
	t.stopped = true
	t.cond.Signal()
	t.mu.Unlock()
	<-t.done
	return t.Err()
}

// Err returns the error that stopped the thread, if any. A node whose
// append thread failed must stop: its writes are no longer acknowledged.
func (t *AppendThread) Err() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.err
}

func (t *AppendThread) loop() {
	defer close(t.done)
	for {
		t.mu.Lock()
		for len(t.queue) == 0 && !t.stopped {
			t.cond.Wait()
		}
		work := t.queue
		t.queue, t.spare = t.spare, nil
		t.mu.Unlock()
		if len(work) == 0 {
			return // stopped with nothing queued
		}
		resps, err := t.s.persistAppends(t.resps[:0], work)
		if err != nil {
			t.mu.Lock()
			t.err = err
			t.queue = nil
			t.mu.Unlock()
			return
		}
		if len(resps) > 0 {
			t.deliver(resps)
		}
		clear(resps)
		t.resps = resps[:0]
		// Drop the references to the persisted entries (the cache keeps
		// its own copy) before the array is queued into again.
		clear(work)
		t.spare = work[:0]
	}
}
