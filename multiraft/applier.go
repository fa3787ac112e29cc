package multiraft

import "github.com/raftkit/raft"

// applier runs the application's applies behind the rounds
// (HostConfig.ApplyQueue): a round hands over its committed entries and
// answered reads as a job and goes on to its next step, save and send,
// while one goroutine calls the application, job by job in the order
// they were handed over.
//
// Why: the round's apply was on the worker's path, so a slow one (a
// Pebble commit that stalls, a round of many keys) held up every group of
// the host: the next round's proposals, and the acknowledgements other
// hosts' leaders wait for to commit. With the apply behind, a round takes
// as long as its save.
//
// Invariants:
//  1. Jobs run one at a time, in submission order; a group's entries are
//     therefore applied in log order, and its read answers after the
//     entries of the Ready that carried them.
//  2. Configuration changes are applied to raft on the worker before a
//     job is submitted (raft's state never waits for the application);
//     only the application's calls trail.
//  3. Restore waits for every job submitted before it (drain): a
//     snapshot replaces a group's state only once its earlier entries were
//     applied, and never while a job may hold the group.
//  4. At most depth jobs wait: a worker whose rounds outrun the
//     application blocks on submit, so the backlog stays bounded.
type applier struct {
	jobs chan applyJob
	done chan struct{}
}

// applyJob is one round's part of the application's work. With done set
// it is a barrier: run closes it.
type applyJob struct {
	applies []GroupEntries
	reads   []groupReads
	done    chan struct{}
}

// groupReads is one group's answered reads, copied out of its Ready.
type groupReads struct {
	g  GroupID
	rs []raft.ReadState
}

func newApplier(depth int) *applier {
	return &applier{jobs: make(chan applyJob, depth), done: make(chan struct{})}
}

// run calls app for each job until close.
func (a *applier) run(app Application) {
	defer close(a.done)
	roundApp, _ := app.(RoundApplication)
	for j := range a.jobs {
		j.run(app, roundApp)
	}
}

func (j *applyJob) run(app Application, roundApp RoundApplication) {
	if roundApp != nil && len(j.applies) > 0 {
		roundApp.ApplyRound(j.applies)
	} else {
		for _, ge := range j.applies {
			app.Apply(ge.Group, ge.Entries)
		}
	}
	for _, r := range j.reads {
		app.ReadIndexDone(r.g, r.rs)
	}
	if j.done != nil {
		close(j.done)
	}
}

// submit queues j, blocking while depth jobs wait (invariant 4). A job
// with nothing in it is not queued.
func (a *applier) submit(j applyJob) {
	if len(j.applies) == 0 && len(j.reads) == 0 && j.done == nil {
		return
	}
	a.jobs <- j
}

// drain returns once every job submitted before it ran (invariant 3).
func (a *applier) drain() {
	done := make(chan struct{})
	a.submit(applyJob{done: done})
	<-done
}

// close runs the jobs left and ends the goroutine; nothing may submit
// after it.
func (a *applier) close() {
	close(a.jobs)
	<-a.done
}
