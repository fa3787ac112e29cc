package multiraft

import "sync"

// schedState is where a group stands with the scheduler.
type schedState uint8

const (
	// schedIdle: no work known; not queued.
	schedIdle schedState = iota
	// schedQueued: waiting in the run queue.
	schedQueued
	// schedRunning: a worker holds the group.
	schedRunning
	// schedRunningDirty: a worker holds the group and more work arrived;
	// the group goes back to the tail of the queue when the worker is done.
	schedRunningDirty
)

// scheduler hands groups with work to a bounded number of workers.
//
// Invariants:
//  1. A group is in the queue at most once (schedQueued).
//  2. A group is held by at most one worker (schedRunning*): work arriving
//     meanwhile marks it dirty instead of queueing it, so no two workers
//     ever process one group at once.
//  3. The queue is FIFO and a worker takes at most maxBatch groups at a
//     time, each for one round of processing; a group with more work goes
//     to the tail. A busy group therefore delays each other group by at
//     most one round per turn (fairness).
type scheduler struct {
	mu       sync.Mutex
	cond     *sync.Cond
	queue    []*group // FIFO: head at queue[head]
	head     int
	maxBatch int
	closed   bool
}

func newScheduler(maxBatch int) *scheduler {
	s := &scheduler{maxBatch: maxBatch}
	s.cond = sync.NewCond(&s.mu)
	return s
}

// enqueue records that g has work.
func (s *scheduler) enqueue(g *group) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch g.sched {
	case schedIdle:
		g.sched = schedQueued
		s.queue = append(s.queue, g)
		s.cond.Signal()
	case schedRunning:
		g.sched = schedRunningDirty
	}
}

// next blocks until groups are queued (or the scheduler closes: nil) and
// takes up to maxBatch of them, marking them running.
func (s *scheduler) next() []*group {
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.head == len(s.queue) && !s.closed {
		s.cond.Wait()
	}
	if s.closed {
		return nil
	}
	return s.takeLocked()
}

// tryNext is next without blocking: nil when the queue is empty.
func (s *scheduler) tryNext() []*group {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.head == len(s.queue) {
		return nil
	}
	return s.takeLocked()
}

func (s *scheduler) takeLocked() []*group {
	n := min(s.maxBatch, len(s.queue)-s.head)
	out := make([]*group, n)
	copy(out, s.queue[s.head:s.head+n])
	for i := s.head; i < s.head+n; i++ {
		s.queue[i] = nil
	}
	s.head += n
	if s.head == len(s.queue) {
		s.queue, s.head = s.queue[:0], 0
	} else if s.head > 1024 && s.head*2 > len(s.queue) {
		s.queue = append(s.queue[:0], s.queue[s.head:]...)
		s.head = 0
	}
	for _, g := range out {
		g.sched = schedRunning
	}
	return out
}

// done releases groups taken by next; dirty ones (and those for which
// again[i] is true) go back to the tail of the queue.
func (s *scheduler) done(gs []*group, again []bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, g := range gs {
		if g.sched == schedRunningDirty || again[i] {
			g.sched = schedQueued
			s.queue = append(s.queue, g)
			s.cond.Signal()
		} else {
			g.sched = schedIdle
		}
	}
}

// pending reports the number of queued groups.
func (s *scheduler) pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue) - s.head
}

// close wakes every waiting worker; next returns nil from then on.
func (s *scheduler) close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cond.Broadcast()
}
