package multiraft

import (
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/raftkit/raft"
	"github.com/raftkit/raft/raftpb"
)

// readyOf is a group's Ready taken in the current round.
type readyOf struct {
	g  *group
	rd raft.Ready
}

// round is one worker round's state, reused from round to round (a pool)
// so that a round allocates little per group.
type round struct {
	gs      []*group
	inboxes []*inbox
	again   []bool
	readys  []readyOf
	updates []GroupUpdate
	out     *outbox
	// early carries the leaders' appends and heartbeats, sent before the
	// save (sendsEarly).
	early *outbox
	// applies collects the round's committed entries for a
	// RoundApplication (nil app: the host calls Apply per group).
	applies  []GroupEntries
	roundApp RoundApplication
	// durable[i] is how many of readys[i]'s committed entries were
	// durable before the round, applied while the round saves
	// (applyDurable); the rest wait for the save.
	durable []int
	// saves and applyMsgs are the Readys' storage work under
	// HostConfig.AsyncSaves (runAsyncRound).
	saves     []saveJob
	applyMsgs []applyOf
}

func (r *round) reset(from HostID) {
	clear(r.gs)
	clear(r.inboxes)
	clear(r.readys)
	clear(r.updates)
	r.gs, r.inboxes, r.again = r.gs[:0], r.inboxes[:0], r.again[:0]
	r.readys, r.updates = r.readys[:0], r.updates[:0]
	r.durable = r.durable[:0]
	clear(r.applies)
	r.applies = r.applies[:0]
	if r.out == nil {
		r.out, r.early = newOutbox(from), newOutbox(from)
	}
	r.out.reset()
	r.early.reset()
}

// runRound gives each of gs, and of the groups the round gathers while
// another round saves (scheduler.gather), one round of processing, as one
// batch: step what arrived, take the Readys, save them all with one
// SaveBatch, then send, apply and advance each, and send the round's
// messages in one batch per host. The worker holds every group of the
// round (scheduler invariant 2).
func (h *Host) runRound(gs []*group) {
	if h.saver != nil {
		h.runAsyncRound(gs)
		return
	}
	r := h.roundPool.Get().(*round)
	r.reset(h.cfg.ID)
	r.out.spareTicks = int64(h.cfg.AppendSparesTicks)
	r.early.spareTicks = int64(h.cfg.AppendSparesTicks)
	r.out.coalesce = !h.cfg.SeparateHeartbeats
	r.early.coalesce = !h.cfg.SeparateHeartbeats
	r.early.holdCommits = !h.cfg.AnnounceCommitsAtOnce
	r.out.holdCommits = !h.cfg.AnnounceCommitsAtOnce
	r.roundApp, _ = h.cfg.App.(RoundApplication)
	defer h.roundPool.Put(r)
	stopped := h.Err() != nil
	began := time.Now()
	h.stepGroups(r, gs, stopped)
	r.early.send(h)
	for more := h.sched.gather(len(r.gs)); more != nil; more = h.sched.gather(len(r.gs)) {
		h.stepGroups(r, more, stopped)
		r.early.send(h)
	}
	stepped := time.Now()
	h.stats.stepNanos.Add(int64(stepped.Sub(began)))
	var err error
	if !stopped && len(r.updates) > 0 {
		applied := h.applyDurable(r)
		err = h.cfg.Storage.SaveBatch(r.updates)
		if err == nil {
			h.sendDurable(r)
		}
		saved := time.Now()
		<-applied
		h.stats.saveNanos.Add(int64(saved.Sub(stepped)))
		h.stats.applyWaitNanos.Add(int64(time.Since(saved)))
	}
	h.sched.saved()
	if err != nil {
		h.lg.Error("storage failed; stopping the host", zap.Error(err))
		h.stop(err)
		stopped = true
	}
	if !stopped {
		h.stats.rounds.Add(1)
		h.stats.groupsRun.Add(uint64(len(r.gs)))
		h.finishRound(r)
	}
	h.sched.done(r.gs, r.again)
}

// admit adds g to the round r and takes its inbox; nil when there is
// nothing to step: the host stopped, or the group is gone or was removed
// by what its inbox held.
func (h *Host) admit(r *round, g *group, stopped bool) *inbox {
	r.gs = append(r.gs, g)
	r.again = append(r.again, false)
	r.inboxes = append(r.inboxes, nil)
	if stopped || g.gone {
		return nil
	}
	in := g.take()
	r.inboxes[len(r.inboxes)-1] = in
	if in.removed {
		h.dropGroup(g)
		return nil
	}
	return in
}

// stepGroups adds gs to the round and steps what arrived for each, taking
// the Readys to save.
func (h *Host) stepGroups(r *round, gs []*group, stopped bool) {
	for _, g := range gs {
		in := h.admit(r, g, stopped)
		if in == nil {
			continue
		}
		h.handleInbox(g, in, r.out)
		if g.rn.HasReady() {
			rd := g.rn.Ready()
			g.noteReady(&rd)
			r.early.addMessages(g, rd.Messages, true, h.ticks.Load())
			r.readys = append(r.readys, readyOf{g, rd})
			r.updates = append(r.updates, updateOf(g.id, &rd))
		}
	}
}

// closedChan is a closed channel: an apply with nothing to wait for.
var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// applyDurable applies, while the round's save runs, the committed
// entries of its Readys that were durable here before the round: the
// entries below a Ready's first new entry (committed entries are never
// overwritten, so those are the ones already in storage), unless the
// Ready carries a snapshot, which must be restored before any entry. A
// committed entry that is durable locally may be applied whether or not
// this round's HardState reaches the disk (a restart finds it committed
// again, and an application that records its applied index skips it), so
// its apply need not wait for the fsync; entries appended in this round
// wait for it (finishRound). It returns a channel closed when done: with
// workers, the apply runs on a goroutine of its own, overlapping the
// save (the worker touches no group until the save returns); in manual
// mode it runs before returning, so that runs stay deterministic.
func (h *Host) applyDurable(r *round) <-chan struct{} {
	some := false
	for i := range r.readys {
		n := durableCommitted(&r.readys[i].rd)
		r.durable = append(r.durable, n)
		some = some || n > 0
	}
	if !some {
		return closedChan
	}
	if h.cfg.Workers == 0 || h.applier != nil { // the applier's job needs no goroutine
		h.applyEarly(r)
		return closedChan
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.applyEarly(r)
	}()
	return done
}

// applyEarly applies the durable committed entries applyDurable chose.
func (h *Host) applyEarly(r *round) {
	for i := range r.readys {
		if n := r.durable[i]; n > 0 {
			rd := &r.readys[i]
			h.applyEntries(r, rd.g, rd.rd.CommittedEntries[:n])
		}
	}
	h.applyRound(r)
}

// durableCommitted returns how many of rd's committed entries are
// already in storage: those before rd's first new entry (a new entry
// never replaces a committed one), none if rd restores a snapshot.
func durableCommitted(rd *raft.Ready) int {
	if !raft.IsEmptySnap(rd.Snapshot) {
		return 0
	}
	if len(rd.Entries) == 0 {
		return len(rd.CommittedEntries)
	}
	first := rd.Entries[0].Index
	n := 0
	for n < len(rd.CommittedEntries) && rd.CommittedEntries[n].Index < first {
		n++
	}
	return n
}

// applyRound hands a RoundApplication the entries collected in r, or the
// applier a job of them.
func (h *Host) applyRound(r *round) {
	switch {
	case h.applier != nil:
		h.applier.submit(applyJob{applies: slices.Clone(r.applies)})
	case r.roundApp != nil && len(r.applies) > 0:
		r.roundApp.ApplyRound(r.applies)
	}
	clear(r.applies)
	r.applies = r.applies[:0]
}

// collects reports whether r gathers its committed entries for one call
// (a RoundApplication's, or the applier's job) instead of calling Apply
// per group.
func (h *Host) collects(r *round) bool { return r.roundApp != nil || h.applier != nil }

// applyRest applies what the round's save waited for: each Ready's
// snapshot and the committed entries not applied during the save, then
// the answered reads, on the worker or as one applier job.
func (h *Host) applyRest(r *round) {
	for i := range r.readys {
		rd := &r.readys[i]
		early := 0
		if i < len(r.durable) {
			early = r.durable[i]
		}
		h.apply(r, rd.g, &rd.rd, early)
	}
	switch {
	case h.applier != nil:
		h.queueApplies(r)
	case r.roundApp != nil:
		h.applyRound(r)
		for i := range r.readys {
			h.readsDone(r.readys[i].g, &r.readys[i].rd)
		}
	}
}

// sendDurable sends the messages of the round's Readys that waited for
// their save (acknowledgements, votes, everything a follower or candidate
// sends), as soon as the save returns: they promise only what is now on
// disk, so neither a leader's commit nor an election waits for this
// host's apply, which may still run (applyDurable's goroutine). That
// goroutine touches the groups' raft configuration and the application,
// never what this reads: the Readys' messages and the fields
// outbox.addMessages keeps per group (acks, recent appends, quiescence).
func (h *Host) sendDurable(r *round) {
	for i := range r.readys {
		rd := &r.readys[i]
		r.out.addMessages(rd.g, rd.rd.Messages, false, h.ticks.Load())
	}
	r.out.send(h)
}

// finishRound runs once the round's updates are durable and their
// messages sent (sendDurable): the committed entries not applied during
// the save are applied, Readys advanced, and each group decides about
// quiescence; what that adds to out leaves in a second batch.
func (h *Host) finishRound(r *round) {
	out := r.out
	streamed := streamsSnapshots(h.cfg.Transport)
	h.applyRest(r)
	for i := range r.readys {
		rd := &r.readys[i]
		rd.g.rn.Advance(rd.rd)
		if !streamed { // the transport reports each stream's outcome
			reportSnapshots(rd.g, rd.rd.Messages)
		}
		if len(rd.rd.Entries) > 0 || len(rd.rd.CommittedEntries) > 0 {
			rd.g.idleTicks = 0
		}
	}
	h.endGroups(r, out)
}

// endGroups ends the round for each of its live groups (quiescence, the
// status the group publishes, whether it has work again) and sends what
// that left in out.
func (h *Host) endGroups(r *round, out *outbox) {
	for i, g := range r.gs {
		if g.gone || r.inboxes[i] == nil {
			continue
		}
		h.endRound(g, r.inboxes[i], out)
		if len(g.held) > 0 {
			out.releaseToFormer(g)
		}
		r.again[i] = g.rn.HasReady()
		g.publish()
	}
	out.send(h)
}

// reportSnapshots tells raft that the snapshots among msgs went out. A
// batch has no delivery acknowledgement, and a leader whose MsgSnap was
// lost would wait for the follower forever (raft pauses a follower it
// sent a snapshot to). Reporting success at once is only a hint: raft
// probes the follower right after the snapshot (on the same ordered
// stream) and sends the snapshot again if the follower does not have it.
func reportSnapshots(g *group, msgs []raftpb.Message) {
	for i := range msgs {
		if msgs[i].Type == raftpb.MsgSnap {
			g.rn.ReportSnapshot(msgs[i].To, raft.SnapshotFinish)
		}
	}
}

func updateOf(id GroupID, rd *raft.Ready) GroupUpdate {
	return GroupUpdate{
		Group:     id,
		HardState: rd.HardState,
		Entries:   rd.Entries,
		Snapshot:  rd.Snapshot,
		MustSync:  rd.MustSync,
	}
}

// dropGroup ends a removed group: its storage is deleted, and the worker
// never touches it again.
func (h *Host) dropGroup(g *group) {
	g.gone = true
	if h.saver != nil { // saver invariant 3
		g.dropped.Store(true)
		if h.cfg.Workers == 0 {
			h.flushSaves()
		} else {
			h.saver.drain()
		}
	}
	if err := h.cfg.Storage.Remove(g.id); err != nil {
		h.lg.Warn("removing a group's storage", zap.Uint64("group", uint64(g.id)), zap.Error(err))
	}
}

// handleInbox steps what arrived for g: first a wake-up if the work ends
// quiescence (so that a woken leader's lease is gone before it serves a
// read), then messages, proposals, reads and ticks. A replica that is
// not leading takes its ticks first: Tick may have held them back
// (tickDeferLimitLocked), and stepped after a heartbeat they would age
// the election timer the heartbeat just reset, as if the leader had been
// silent for that long (an early election, and a vote granted inside the
// leader's lease). Stepped first, they only age the timer since the
// previous message, which they preceded.
func (h *Host) handleInbox(g *group, in *inbox, out *outbox) {
	if g.quiesced {
		if in.wakes(g) || h.livenessWakes(g, in) {
			h.wake(g, out)
		}
	}
	if h.cfg.FastFailover && !g.leading && g.lead != raft.None && slices.Contains(in.hostsDown, g.lead) {
		g.rn.ReportUnreachable(g.lead)
	}
	ticks := in.ticks
	if !g.leading && !g.quiesced {
		g.tick(ticks)
		ticks = 0
	}
	for i := range in.items {
		h.stepItem(g, &in.items[i])
	}
	for _, r := range in.snapReports {
		g.rn.ReportSnapshot(r.to, r.status)
	}
	var dropped [][]byte
	for _, p := range in.props {
		if err := g.rn.Propose(p); err != nil {
			h.stats.propsDropped.Add(1)
			dropped = append(dropped, p)
		}
	}
	if len(dropped) > 0 {
		if d, ok := h.cfg.App.(ProposalDropObserver); ok {
			d.ProposalsDropped(g.id, dropped)
		}
	}
	for _, cc := range in.confs {
		if err := g.rn.ProposeConfChange(cc); err != nil {
			h.stats.propsDropped.Add(1)
		}
	}
	for _, r := range in.reads {
		g.rn.ReadIndex(r)
		g.readsOut++
		g.readTicks = 2 * h.cfg.ElectionTick
	}
	if !g.quiesced {
		g.tick(ticks)
	}
}

// stepItem hands one received item to raft.
func (h *Host) stepItem(g *group, it *Item) {
	switch it.Kind {
	case KindWake:
		return
	case KindQuiesce:
		if it.Msg.Type != raftpb.MsgHeartbeat {
			h.stats.itemsDropped.Add(1)
			return
		}
		m := it.Msg
		g.quiesceReq = &m
	}
	if err := g.rn.Step(it.Msg); err != nil {
		h.stats.stepErrors.Add(1)
		return
	}
	if it.Msg.Type == raftpb.MsgProp && g.leading {
		// A member forwarded proposals: it is owed their commit index
		// (noteForwarded, announce.go).
		g.forwarding = append(g.forwarding, HostID(it.Msg.From))
	}
	if it.Msg.Type == raftpb.MsgAppResp && g.leading {
		if bs := g.rn.BasicStatus(); bs.RaftState == raft.StateLeader && bs.Term == it.Msg.Term {
			g.noteAck(it.Msg.From, h.ticks.Load())
		}
	}
}

// apply hands a Ready's snapshot, committed entries (but the first
// early, applied during the save) and read states to the application; for
// a RoundApplication, it collects the entries in r and leaves the read
// states to finishRound.
func (h *Host) apply(r *round, g *group, rd *raft.Ready, early int) {
	if !raft.IsEmptySnap(rd.Snapshot) && !h.restoreSnapshot(g, &rd.Snapshot) {
		return
	}
	h.applyEntries(r, g, rd.CommittedEntries[early:])
	if !h.collects(r) {
		h.readsDone(g, rd)
	}
}

// restoreSnapshot hands snap to the application as g's new state, once
// the applies queued before it are done; false if the application
// failed, which stops the host.
func (h *Host) restoreSnapshot(g *group, snap *raftpb.Snapshot) bool {
	if h.applier != nil {
		h.applier.drain() // applier invariant 3
	}
	if err := h.cfg.App.Restore(g.id, *snap); err != nil {
		h.lg.Error("restoring a snapshot; stopping the host", zap.Uint64("group", uint64(g.id)), zap.Error(err))
		h.stop(err)
		return false
	}
	g.confIndex = max(g.confIndex, snap.Metadata.Index)
	g.refreshMembers()
	return true
}

// applyEntries applies committed entries of g: configuration changes to
// raft first, then the entries to the application (collected in r for a
// RoundApplication).
func (h *Host) applyEntries(r *round, g *group, ents []raftpb.Entry) {
	if len(ents) == 0 {
		return
	}
	changed := false
	for i := range ents {
		if h.applyConfEntry(g, &ents[i]) {
			changed = true
		}
	}
	if changed {
		g.refreshMembers()
	}
	if h.collects(r) {
		r.applies = append(r.applies, GroupEntries{Group: g.id, Entries: ents})
		return
	}
	h.cfg.App.Apply(g.id, ents)
}

// readsDone hands a Ready's read states to the application.
func (h *Host) readsDone(g *group, rd *raft.Ready) {
	if noteReadsAnswered(g, rd) {
		h.cfg.App.ReadIndexDone(g.id, rd.ReadStates)
	}
}

// noteReadsAnswered counts rd's read states as answered in g and reports
// whether there are any.
func noteReadsAnswered(g *group, rd *raft.Ready) bool {
	if len(rd.ReadStates) == 0 {
		return false
	}
	g.readsOut = max(0, g.readsOut-len(rd.ReadStates))
	if g.readsOut == 0 {
		g.readTicks = 0
	}
	return true
}

// applyConfEntry applies e to raft if it is a configuration change.
func (h *Host) applyConfEntry(g *group, e *raftpb.Entry) bool {
	var cc raftpb.ConfChangeI
	switch e.Type {
	case raftpb.EntryConfChange:
		var c raftpb.ConfChange
		if err := c.Unmarshal(e.Data); err != nil {
			h.lg.Error("undecodable conf change", zap.Uint64("group", uint64(g.id)), zap.Error(err))
			return false
		}
		cc = c
	case raftpb.EntryConfChangeV2:
		var c raftpb.ConfChangeV2
		if err := c.Unmarshal(e.Data); err != nil {
			h.lg.Error("undecodable conf change", zap.Uint64("group", uint64(g.id)), zap.Error(err))
			return false
		}
		cc = c
	default:
		return false
	}
	if h.refusedConfChange(g, cc) {
		h.lg.Info("configuration change refused by the application", zap.Uint64("group", uint64(g.id)),
			zap.Uint64("index", e.Index))
		return false
	}
	g.rn.ApplyConfChange(cc)
	g.confIndex = e.Index
	return true
}

// queueApplies hands the round's collected entries and its Readys'
// answered reads to the applier (HostConfig.ApplyQueue) as one job.
func (h *Host) queueApplies(r *round) {
	job := applyJob{applies: slices.Clone(r.applies)}
	for i := range r.readys {
		rd := &r.readys[i]
		if noteReadsAnswered(rd.g, &rd.rd) {
			// Raft may lend the ReadStates' array out again at the
			// group's next Ready, which the job may outlive.
			job.reads = append(job.reads, groupReads{rd.g.id, slices.Clone(rd.rd.ReadStates)})
		}
	}
	clear(r.applies)
	r.applies = r.applies[:0]
	h.applier.submit(job)
}
