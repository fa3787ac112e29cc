package transport

import (
	"sync"

	"github.com/raftkit/raft/raftpb"
)

// shrinkAbove is the capacity, in messages, above which a drained batch
// buffer is let go rather than kept for reuse, so that one burst does not
// pin its peak for the life of the peer.
const shrinkAbove = 1024

// msgQueue is a peer's bounded send queue. Unlike a buffered channel of
// Config.QueueSize messages, which allocates every slot up front (about
// 0.7 MiB per peer at the default 4096), it holds only what is pending:
// Send appends under a mutex, and the writer takes everything pending at
// once by swapping buffers, which also costs one lock per batch instead of
// one channel operation per message.
type msgQueue struct {
	mu      sync.Mutex
	pending []raftpb.Message
	limit   int
	// ready holds a token while pending may be non-empty: push adds one
	// when it makes pending non-empty. The writer waits on it; a token
	// may be stale (take then finds nothing), never missing.
	ready chan struct{}
}

func newMsgQueue(limit int) *msgQueue {
	return &msgQueue{limit: limit, ready: make(chan struct{}, 1)}
}

// push appends m, or returns false if limit messages are already pending.
func (q *msgQueue) push(m raftpb.Message) bool {
	q.mu.Lock()
	if len(q.pending) >= q.limit {
		q.mu.Unlock()
		return false
	}
	wasEmpty := len(q.pending) == 0
	q.pending = append(q.pending, m)
	q.mu.Unlock()
	if wasEmpty {
		select {
		case q.ready <- struct{}{}:
		default:
		}
	}
	return true
}

// take returns every pending message, in order, and leaves the queue empty.
// spare (emptied by the caller, see recycle) becomes the queue's next
// buffer, so that two buffers alternate between Send and the writer.
func (q *msgQueue) take(spare []raftpb.Message) []raftpb.Message {
	q.mu.Lock()
	out := q.pending
	q.pending = spare[:0]
	q.mu.Unlock()
	return out
}

// recycle clears a batch returned by take once it is written (so that the
// payloads it points to can be freed) and returns it for the next take, or
// nil if it grew past shrinkAbove.
func recycle(batch []raftpb.Message) []raftpb.Message {
	if cap(batch) > shrinkAbove {
		return nil
	}
	clear(batch)
	return batch[:0]
}

// discard empties the queue and returns how many messages it held.
func (q *msgQueue) discard() int {
	q.mu.Lock()
	n := len(q.pending)
	clear(q.pending)
	q.pending = q.pending[:0]
	if cap(q.pending) > shrinkAbove {
		q.pending = nil
	}
	q.mu.Unlock()
	return n
}
