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

// pushResult says what push did with a message.
type pushResult int

const (
	pushed     pushResult = iota // appended to the queue
	superseded                   // took the place of the queue's last message (see supersedes)
	queueFull                    // refused: limit messages already pending
)

// push appends m, or puts it in place of the last pending message if m
// supersedes it, or refuses it if limit messages are already pending.
func (q *msgQueue) push(m raftpb.Message) pushResult {
	q.mu.Lock()
	if n := len(q.pending); n > 0 && supersedes(&m, &q.pending[n-1]) {
		q.pending[n-1] = m
		q.mu.Unlock()
		return superseded
	}
	if len(q.pending) >= q.limit {
		q.mu.Unlock()
		return queueFull
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
	return pushed
}

// supersedes reports whether delivering next alone does everything that
// delivering prev and then next would: prev is an append without entries
// (a leader telling the peer its new commit index, or probing) and next an
// append of the same leader in the same term after the same entry (Index
// and LogTerm), carrying at least prev's commit index. The peer checks the
// same log position for both, so it accepts or rejects both alike, and
// next's entries and commit index include what prev would have taken
// effect; prev's answer, which only repeats what next's answer says, is
// not missed. Under load, when the writer has not yet taken the commit
// update a leader sent after a commit, the next proposal's append makes it
// redundant: the peer is spared a message to step, a write of its commit
// index and an answer, and the leader that answer.
func supersedes(next, prev *raftpb.Message) bool {
	return prev.Type == raftpb.MsgApp && next.Type == raftpb.MsgApp &&
		len(prev.Entries) == 0 &&
		next.From == prev.From && next.To == prev.To && next.Term == prev.Term &&
		next.Index == prev.Index && next.LogTerm == prev.LogTerm &&
		next.Commit >= prev.Commit && !prev.Reject
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
