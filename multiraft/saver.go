package multiraft

import (
	"sync"

	"go.uber.org/zap"

	"github.com/raftkit/raft"
	"github.com/raftkit/raft/raftpb"
)

// saveJob is one Ready's write work (HostConfig.AsyncSaves): group g's
// MsgStorageAppend, whose Responses may be delivered once its snapshot,
// entries and HardState are durable.
type saveJob struct {
	g        *group
	msg      raftpb.Message
	mustSync bool
}

// saver is a host's storage writer under HostConfig.AsyncSaves: the
// rounds hand it their groups' MsgStorageAppend messages and go on; it
// saves what accumulated with one Storage.SaveBatch and then delivers
// their Responses.
//
// Invariants:
//  1. Jobs are saved in the order they were submitted, one SaveBatch at a
//     time, so each group's writes reach Storage in the order raft
//     produced them (raft's contract for the append thread).
//  2. No Response of a job is delivered (sent to a peer or stepped into
//     its group) before the SaveBatch that holds the job returned nil:
//     an acknowledgement or a vote never leaves ahead of the write it
//     answers for (TestAsyncSavesAckAfterDurable).
//  3. A group's jobs are skipped once the group was dropped; dropGroup
//     waits (drain) until none of them is being saved before it removes
//     the group's storage.
type saver struct {
	mu     sync.Mutex
	cond   *sync.Cond
	queue  []saveJob
	busy   bool // jobs taken and not yet delivered
	closed bool
	// out is the saver goroutine's outbox (only it touches it).
	out *outbox
}

func newSaver(from HostID) *saver {
	s := &saver{out: newOutbox(from)}
	s.cond = sync.NewCond(&s.mu)
	return s
}

// submit queues jobs, in order, after those submitted before.
func (s *saver) submit(jobs []saveJob) {
	if len(jobs) == 0 {
		return
	}
	s.mu.Lock()
	s.queue = append(s.queue, jobs...)
	s.mu.Unlock()
	s.cond.Broadcast()
}

// take blocks until jobs are queued (nil once closed), then takes them
// all.
func (s *saver) take() []saveJob {
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.queue) == 0 && !s.closed {
		s.cond.Wait()
	}
	if s.closed {
		return nil
	}
	return s.takeLocked()
}

// takeNow takes the queued jobs without waiting (manual mode).
func (s *saver) takeNow() []saveJob {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.takeLocked()
}

func (s *saver) takeLocked() []saveJob {
	if len(s.queue) == 0 {
		return nil
	}
	jobs := s.queue
	s.queue = nil
	s.busy = true
	return jobs
}

// finished records that the jobs taken last are saved and delivered (or
// dropped).
func (s *saver) finished() {
	s.mu.Lock()
	s.busy = false
	s.mu.Unlock()
	s.cond.Broadcast()
}

// pending reports whether jobs wait to be saved.
func (s *saver) pending() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue) > 0
}

// drain waits until every job submitted so far is saved and delivered,
// or the saver closed.
func (s *saver) drain() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for (len(s.queue) > 0 || s.busy) && !s.closed {
		s.cond.Wait()
	}
}

// close makes take return nil; queued jobs are dropped, as a crash
// would lose them.
func (s *saver) close() {
	s.mu.Lock()
	s.closed = true
	s.queue = nil
	s.mu.Unlock()
	s.cond.Broadcast()
}

// saveLoop is the saver's goroutine (workers mode).
func (h *Host) saveLoop() {
	defer h.wg.Done()
	for {
		jobs := h.saver.take()
		if jobs == nil {
			return
		}
		h.saveJobs(jobs)
		h.saver.finished()
	}
}

// flushSaves saves and delivers the queued jobs on the caller's
// goroutine (manual mode: RunPending, dropGroup); it reports whether
// there were any.
func (h *Host) flushSaves() bool {
	jobs := h.saver.takeNow()
	if jobs == nil {
		return false
	}
	h.saveJobs(jobs)
	h.saver.finished()
	return true
}

// saveJobs persists jobs with one SaveBatch, then delivers their
// Responses: those for other hosts in one batch per host, those for this
// host (raft's notes of durability, a leader's acknowledgement of its own
// entries) into their groups' inboxes, which are then scheduled. A
// stopped host saves and delivers nothing.
func (h *Host) saveJobs(jobs []saveJob) {
	if h.Err() != nil {
		return
	}
	updates := make([]GroupUpdate, 0, len(jobs))
	for i := range jobs {
		j := &jobs[i]
		if j.g.dropped.Load() {
			continue
		}
		if u, ok := appendUpdateOf(j); ok {
			updates = append(updates, u)
		}
	}
	if len(updates) > 0 {
		if err := h.cfg.Storage.SaveBatch(updates); err != nil {
			h.lg.Error("storage failed; stopping the host", zap.Error(err))
			h.stop(err)
			return
		}
		h.stats.saves.Add(1)
	}
	h.deliverSaved(jobs)
}

// deliverSaved delivers the Responses of saved jobs (saver invariant 2),
// but the acknowledgements a later one of the same save supersedes.
func (h *Host) deliverSaved(jobs []saveJob) {
	out := h.saver.out
	touched := make([]*group, 0, len(jobs))
	latest := latestAcks(jobs, h.cfg.ID)
	for i := range jobs {
		j := &jobs[i]
		if j.g.dropped.Load() {
			continue
		}
		var local []raftpb.Message
		for _, m := range j.msg.Responses {
			switch {
			case m.To == h.cfg.ID:
				local = append(local, m)
				continue
			case isAck(&m) && latest[ackKey{j.g.id, m.To, m.Term}] > m.Index:
				continue
			}
			out.add(m.To, Item{Group: j.g.id, Kind: KindRaft, Msg: m})
		}
		if h.stepSavedNow(j.g, local) {
			continue
		}
		j.g.push(func(in *inbox) {
			in.local = append(in.local, local...)
			in.saved++
		})
		if len(local) > 0 {
			// Without a note to step, the group needs no round now: its
			// next one counts the save (inbox.saved).
			touched = append(touched, j.g)
		}
	}
	out.send(h)
	h.sched.enqueueAll(touched)
}

// stepSavedNow steps a save's notes into g on the saver's goroutine if g
// is idle (the saver then holds it, scheduler invariant 2), and
// schedules g only if that left it work: a note that only marks entries
// durable (a follower's, before its leader's commit index reaches them)
// then costs g no turn in a round. A note with a snapshot goes through a
// round (the application restores the snapshot first, stepSaved).
func (h *Host) stepSavedNow(g *group, local []raftpb.Message) bool {
	for i := range local {
		if local[i].Snapshot != nil {
			return false
		}
	}
	if !h.sched.tryHold(g) {
		return false
	}
	g.unsaved--
	for i := range local {
		if err := g.rn.Step(local[i]); err != nil {
			h.stats.stepErrors.Add(1)
		}
	}
	h.sched.done([]*group{g}, []bool{g.rn.HasReady()})
	return true
}

// ackKey names the acknowledgements of appends that supersede one
// another: a group's, to one leader, in one term.
type ackKey struct {
	g    GroupID
	to   HostID
	term uint64
}

func isAck(m *raftpb.Message) bool { return m.Type == raftpb.MsgAppResp && !m.Reject }

// latestAcks returns, per ackKey, the highest index that jobs
// acknowledge to another host. Of a group's acknowledgements to its
// leader in one save, only the one of the highest index needs to leave:
// it tells the leader all the others do (the rounds' outbox drops
// superseded ones the same way, see superseded), and with writes saved
// behind the rounds a follower's save often holds several of its
// group's Readys.
func latestAcks(jobs []saveJob, self HostID) map[ackKey]uint64 {
	latest := make(map[ackKey]uint64)
	for i := range jobs {
		for k := range jobs[i].msg.Responses {
			m := &jobs[i].msg.Responses[k]
			if m.To != self && isAck(m) {
				key := ackKey{jobs[i].g.id, m.To, m.Term}
				latest[key] = max(latest[key], m.Index)
			}
		}
	}
	return latest
}

// appendUpdateOf is the update that persists j's MsgStorageAppend (its
// HardState travels in Term, Vote and Commit, all zero when unchanged);
// false when it writes nothing (it only carries Responses that wait for
// earlier writes).
func appendUpdateOf(j *saveJob) (GroupUpdate, bool) {
	m := &j.msg
	u := GroupUpdate{
		Group:     j.g.id,
		HardState: raftpb.HardState{Term: m.Term, Vote: m.Vote, Commit: m.Commit},
		Entries:   m.Entries,
		MustSync:  j.mustSync,
	}
	if m.Snapshot != nil {
		u.Snapshot = *m.Snapshot
	}
	if len(u.Entries) == 0 && raft.IsEmptyHardState(u.HardState) && raft.IsEmptySnap(u.Snapshot) {
		return GroupUpdate{}, false
	}
	return u, true
}
