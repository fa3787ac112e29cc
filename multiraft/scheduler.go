package multiraft

import (
	"sync"
	"time"
)

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
//  3. The queue is FIFO and a round holds at most maxBatch groups, each
//     for one round of processing; a group with more work goes to the
//     tail. A busy group therefore delays each other group by at most one
//     round per turn (fairness).
//  4. At most one round gathers at a time (see gather): an idle worker
//     does not start a second round of one or two groups while another
//     round is still taking what arrives, so rounds fill instead of
//     trickling through one group at a time.
//
// A round's life: next (or tryNext) takes the first groups and makes the
// worker the gatherer; gather hands it more until the round starts
// saving; saved ends the save; done releases the groups.
type scheduler struct {
	mu       sync.Mutex
	cond     *sync.Cond
	queue    []*group // FIFO: head at queue[head]
	head     int
	maxBatch int
	closed   bool
	// gathering counts rounds that took groups and did not start saving;
	// saving counts rounds between the start and the end of their
	// Storage.SaveBatch.
	gathering, saving int
	// minInterval paces saves (HostConfig.MinSaveInterval); lastSave is
	// when the last round started saving, with lastGroups groups.
	minInterval time.Duration
	lastSave    time.Time
	lastGroups  int
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
	if s.enqueueLocked(g) {
		s.cond.Broadcast()
	}
}

// enqueueAll records that every group of gs (nil ones skipped) has work,
// at once: a worker woken by the first cannot start a round before the
// others are queued (a received batch, a tick), which would split what
// arrived together into rounds of one or two groups.
func (s *scheduler) enqueueAll(gs []*group) {
	s.mu.Lock()
	defer s.mu.Unlock()
	queued := false
	for _, g := range gs {
		if g != nil && s.enqueueLocked(g) {
			queued = true
		}
	}
	if queued {
		s.cond.Broadcast()
	}
}

// enqueueLocked queues g unless it is queued or held; it reports whether
// it queued it. s.mu held.
func (s *scheduler) enqueueLocked(g *group) bool {
	switch g.sched {
	case schedIdle:
		g.sched = schedQueued
		s.queue = append(s.queue, g)
		return true
	case schedRunning:
		g.sched = schedRunningDirty
	}
	return false
}

// next blocks until groups are queued and no other round gathers (or the
// scheduler closes: nil), and takes up to maxBatch of them, marking them
// running; the caller's round gathers from then on.
func (s *scheduler) next() []*group {
	s.mu.Lock()
	defer s.mu.Unlock()
	for (s.head == len(s.queue) || s.gathering > 0) && !s.closed {
		s.cond.Wait()
	}
	if s.closed {
		return nil
	}
	s.gathering++
	return s.takeLocked(s.maxBatch)
}

// tryNext is next without blocking: nil when the queue is empty. It does
// not wait for another gathering round (manual mode has none).
func (s *scheduler) tryNext() []*group {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.head == len(s.queue) {
		return nil
	}
	s.gathering++
	return s.takeLocked(s.maxBatch)
}

// gather gives a gathering round that holds have groups more of them:
// while another round is saving (its fsync under way), waiting for its
// turn at the disk costs the round nothing, so it takes the groups that
// become ready meanwhile, up to maxBatch in all, instead of saving a
// round of one group and making the next group wait for another fsync.
// With minInterval set, a round that would start saving sooner than
// minInterval after the previous one waits out the difference if either
// round holds several groups, and takes what arrived meanwhile: under the
// load of many groups, saves (and their fsyncs) are paced and rounds
// fill; an idle host's first save does not wait, nor does a host whose
// rounds hold one group each (pacing cannot fill those: a group has one
// Ready at a time, so it would only add latency).
//
// It returns nil when the round should save now: no other round is
// saving and the pace allows, the round is full, or the scheduler
// closed; the round then counts as saving until saved. With Workers 0 no
// round is ever saving when another gathers and minInterval is zero, so
// manual mode takes nothing here and stays deterministic.
func (s *scheduler) gather(have int) []*group {
	s.mu.Lock()
	defer s.mu.Unlock()
	slept := false
	for have < s.maxBatch && !s.closed {
		queued := s.head < len(s.queue)
		if queued && (s.saving > 0 || slept) {
			return s.takeLocked(s.maxBatch - have)
		}
		if s.saving > 0 {
			s.cond.Wait()
			continue
		}
		if s.minInterval <= 0 || slept || (s.lastGroups < 2 && have < 2) {
			break
		}
		wait := s.minInterval - time.Since(s.lastSave)
		if wait <= 0 {
			break
		}
		s.mu.Unlock()
		time.Sleep(wait)
		s.mu.Lock()
		slept = true
	}
	s.gathering--
	s.saving++
	if s.minInterval > 0 {
		s.lastSave, s.lastGroups = time.Now(), have
	}
	s.cond.Broadcast() // another worker may gather now
	return nil
}

// saved records that a round that stopped gathering finished its save.
func (s *scheduler) saved() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.saving--
	s.cond.Broadcast()
}

func (s *scheduler) takeLocked(limit int) []*group {
	n := min(limit, len(s.queue)-s.head)
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

// tryHold makes the caller hold g, as a worker holds the groups of its
// round, if g is idle (neither queued nor held); it reports whether it
// does. Release it with done.
func (s *scheduler) tryHold(g *group) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if g.sched != schedIdle {
		return false
	}
	g.sched = schedRunning
	return true
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
			s.cond.Broadcast()
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
