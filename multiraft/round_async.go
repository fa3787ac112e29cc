package multiraft

import (
	"slices"
	"time"

	"github.com/raftkit/raft"
	"github.com/raftkit/raft/raftpb"
)

// applyOf is a group's MsgStorageApply taken in the current round
// (HostConfig.AsyncSaves): committed entries, durable here, to apply.
type applyOf struct {
	g   *group
	msg raftpb.Message
}

// runAsyncRound is a round under HostConfig.AsyncSaves: step what arrived
// for each group (the saver's notes among it) and take its Ready, hand
// the Readys' writes to the saver, send their messages, apply their
// committed entries, and let the groups go. Nothing here waits for the
// disk: what must (acknowledgements, votes, raft's notes of durability)
// rides with the writes as their Responses, and the saver delivers it
// once they are durable (saver invariant 2). A group whose write is
// still being synced can thus run again, step its next proposals and
// answers and send its next appends, which the round that held it for
// the sync made wait before.
func (h *Host) runAsyncRound(gs []*group) {
	r := h.roundPool.Get().(*round)
	r.reset(h.cfg.ID)
	r.out.spareTicks = int64(h.cfg.AppendSparesTicks)
	r.out.coalesce = !h.cfg.SeparateHeartbeats
	r.out.all = true
	r.out.holdCommits = !h.cfg.AnnounceCommitsAtOnce
	r.roundApp, _ = h.cfg.App.(RoundApplication)
	defer h.roundPool.Put(r)
	stopped := h.Err() != nil
	began := time.Now()
	h.stepAsync(r, gs, stopped)
	for more := h.sched.gather(len(r.gs)); more != nil; more = h.sched.gather(len(r.gs)) {
		h.stepAsync(r, more, stopped)
	}
	h.stats.stepNanos.Add(int64(time.Since(began)))
	h.sched.saved() // the round does not save: it only paces (gather)
	if !stopped {
		h.saver.submit(r.saves)
		r.out.send(h)
		h.stats.rounds.Add(1)
		h.stats.groupsRun.Add(uint64(len(r.gs)))
		h.finishAsync(r)
	}
	clear(r.saves)
	r.saves = r.saves[:0]
	clear(r.applyMsgs)
	r.applyMsgs = r.applyMsgs[:0]
	h.sched.done(r.gs, r.again)
}

// stepAsync adds gs to the round, steps what arrived for each and takes
// its Ready.
func (h *Host) stepAsync(r *round, gs []*group, stopped bool) {
	for _, g := range gs {
		in := h.admit(r, g, stopped)
		if in == nil {
			continue
		}
		if !h.stepSaved(g, in) {
			continue
		}
		h.handleInbox(g, in, r.out)
		if g.rn.HasReady() {
			h.takeAsyncReady(r, g)
		}
	}
}

// stepSaved steps the Responses the saver delivered to g: a note that
// installs a snapshot restores the application's state from it first
// (raft hands out no entry after the snapshot before it stepped the
// note). False if that failed, which stops the host.
func (h *Host) stepSaved(g *group, in *inbox) bool {
	g.unsaved -= in.saved
	for i := range in.local {
		m := &in.local[i]
		if m.Type == raftpb.MsgStorageAppendResp && m.Snapshot != nil && !h.restoreSnapshot(g, m.Snapshot) {
			return false
		}
		if err := g.rn.Step(*m); err != nil {
			h.stats.stepErrors.Add(1)
		}
	}
	return true
}

// takeAsyncReady takes g's Ready: its write goes to the round's saves,
// its apply to the round's applies, its other messages to the outbox.
func (h *Host) takeAsyncReady(r *round, g *group) {
	rd := g.rn.Ready()
	g.noteReady(&rd)
	for i := range rd.Messages {
		m := &rd.Messages[i]
		switch m.To {
		case raft.LocalAppendThread:
			r.saves = append(r.saves, h.saveJobOf(g, m))
		case raft.LocalApplyThread:
			r.applyMsgs = append(r.applyMsgs, applyOf{g, *m})
		}
	}
	r.out.addMessages(g, rd.Messages, true, h.ticks.Load())
	r.readys = append(r.readys, readyOf{g, rd})
}

// saveJobOf makes the saver's job of g's MsgStorageAppend m: its
// Responses but the acknowledgements that repeat the last one (see
// repeatsAck), and whether the write needs a sync (new entries, a
// snapshot, or a new term or vote; a commit index alone does not).
func (h *Host) saveJobOf(g *group, m *raftpb.Message) saveJob {
	j := saveJob{g: g, msg: *m}
	j.msg.Responses = slices.DeleteFunc(j.msg.Responses, func(resp raftpb.Message) bool {
		return resp.To != h.cfg.ID && g.repeatsAck(&resp)
	})
	j.mustSync = len(m.Entries) > 0 || m.Snapshot != nil
	if m.Term != 0 && (m.Term != g.savedTerm || m.Vote != g.savedVote) {
		j.mustSync = true
		g.savedTerm, g.savedVote = m.Term, m.Vote
	}
	g.unsaved++
	return j
}

// finishAsync applies the round's committed entries, answers its reads,
// steps raft's notes that the entries are applied, and lets each group
// decide about quiescence; what that adds to the outbox leaves in a
// second batch.
func (h *Host) finishAsync(r *round) {
	streamed := streamsSnapshots(h.cfg.Transport)
	for i := range r.applyMsgs {
		a := &r.applyMsgs[i]
		h.applyEntries(r, a.g, a.msg.Entries)
	}
	h.answerAsync(r)
	for i := range r.applyMsgs {
		a := &r.applyMsgs[i]
		for _, resp := range a.msg.Responses {
			if err := a.g.rn.Step(resp); err != nil {
				h.stats.stepErrors.Add(1)
			}
		}
	}
	for i := range r.readys {
		rd := &r.readys[i]
		if !streamed {
			reportSnapshots(rd.g, rd.rd.Messages)
		}
		if len(rd.rd.Entries) > 0 || len(rd.rd.CommittedEntries) > 0 {
			rd.g.idleTicks = 0
		}
	}
	h.endGroups(r, r.out)
}

// answerAsync hands the round's collected entries to the application
// (a RoundApplication's call, or the applier's job) and its Readys' read
// states, after the entries.
func (h *Host) answerAsync(r *round) {
	if h.applier != nil {
		h.queueApplies(r)
		return
	}
	h.applyRound(r)
	for i := range r.readys {
		h.readsDone(r.readys[i].g, &r.readys[i].rd)
	}
}
