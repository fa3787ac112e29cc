package raft

import pb "github.com/raftkit/raft/raftpb"

// The storage side of a Ready, and what raft learns back from it.
//
// A Ready gives the storage side two kinds of work: writes (entries,
// HardState, snapshot) and applying (committed entries). Once each is done,
// some acknowledgements hold: after the writes, the messages that waited
// for durability (msgsAfterAppend) and raft's own note that its log is
// durable (noteDurable); after applying, the note that the entries are
// applied (noteApplied). The two modes deliver the same notes:
//
//   - synchronously the application does both kinds of work before Advance,
//     which steps the acknowledgements addressed to this node
//     (RawNode.pendingAcks) while the others go out with the Ready's
//     messages;
//   - with AsyncStorageWrites the work goes, as messages, to the append and
//     apply threads (appendStorageWork), carrying the acknowledgements as
//     Responses for the threads to deliver once the work is done.

// appendStorageWork adds to msgs the work for the local storage threads in
// rd, if any. Whatever waits for durability or application rides along with
// that work, so the rest of the messages can go out at once.
func appendStorageWork(r *raft, msgs []pb.Message, rd *Ready) []pb.Message {
	if hasWriteWork(r, rd) {
		msgs = enqueue(msgs, writeWorkMsg(r, rd), r.outboxRoom)
	}
	if len(rd.CommittedEntries) != 0 {
		msgs = enqueue(msgs, applyWorkMsg(r, rd), r.outboxRoom)
	}
	return msgs
}

// hasWriteWork reports whether the append thread has work in rd: something
// to write, or messages that must wait until everything handed to it
// earlier is durable.
func hasWriteWork(r *raft, rd *Ready) bool {
	return len(rd.Entries) != 0 || !IsEmptyHardState(rd.HardState) ||
		hasSnapshot(&rd.Snapshot) || len(r.msgsAfterAppend) != 0
}

// writeWorkMsg builds the message for the append thread: write rd's
// entries, HardState and snapshot, then deliver the Responses, in order:
// the messages that were waiting for durability (votes, append
// acknowledgements), then raft's durability note. On a leader its own
// MsgAppResp thus comes before the note that marks the entries durable.
//
// The HardState travels in the message's Term, Vote and Commit. Without a
// change they all stay zero, so that the HardState rebuilt from them is
// empty and nothing is written.
func writeWorkMsg(r *raft, rd *Ready) pb.Message {
	var term, vote, commit uint64
	if !IsEmptyHardState(rd.HardState) {
		term, vote, commit = rd.Term, rd.Vote, rd.Commit
	}
	return pb.Message{
		Type:      pb.MsgStorageAppend,
		From:      r.id,
		To:        LocalAppendThread,
		Term:      term,
		Vote:      vote,
		Commit:    commit,
		Entries:   rd.Entries,
		Snapshot:  snapshotCopy(rd),
		Responses: noteDurable(r.msgsAfterAppend, r, rd),
	}
}

// applyWorkMsg builds the message for the apply thread: apply rd's
// committed entries, then deliver the note that they are applied. Applying
// does not happen under any particular term, so Term stays zero.
func applyWorkMsg(r *raft, rd *Ready) pb.Message {
	return pb.Message{
		Type:      pb.MsgStorageApply,
		From:      r.id,
		To:        LocalApplyThread,
		Entries:   rd.CommittedEntries,
		Responses: noteApplied(make([]pb.Message, 0, 1), r, rd),
	}
}

// noteDurable appends to q the note that everything handed out for writing
// so far, rd included, is durable, when raft wants to hear it (see
// takeDurableNote).
func noteDurable(q []pb.Message, r *raft, rd *Ready) []pb.Message {
	if d, ok := takeDurableNote(r, rd); ok {
		d.fill(addMessage(&q), r.id)
	}
	return q
}

// noteApplied appends to q the note that rd's committed entries are
// applied, if it has any.
func noteApplied(q []pb.Message, r *raft, rd *Ready) []pb.Message {
	if len(rd.CommittedEntries) != 0 {
		fillAppliedNote(addMessage(&q), r.id, rd.CommittedEntries)
	}
	return q
}

// durableNote is what the note that everything handed out for writing so
// far is durable says, taken when the Ready is handed out: its term, the
// last entry it acknowledges and the snapshot it wrote (nil if none).
type durableNote struct {
	term     uint64
	last     entryID
	snapshot *pb.Snapshot
}

// takeDurableNote returns the note that everything handed out for writing
// so far, rd included, is durable, and whether raft wants to hear it: while
// any entry in memory is not durable yet, even one handed out by an earlier
// Ready, or when rd writes a snapshot.
//
// The note names the current term and the log's last entry, not the last
// entry of this Ready. The term makes the note stale after a term change: a
// new leader may have overwritten the acknowledged indexes, and its entries
// could still be on their way to storage, so marking them durable on the
// strength of an older write would be wrong. Naming the last entry of the
// whole log, even when this Ready has no entries (a HardState-only write
// after a term change), gives every term a chance to acknowledge entries
// whose own note went stale, so that the log's durable mark eventually
// catches up.
func takeDurableNote(r *raft, rd *Ready) (durableNote, bool) {
	undurable := r.log.hasUndurable()
	if !undurable && !hasSnapshot(&rd.Snapshot) {
		return durableNote{}, false
	}
	d := durableNote{term: r.Term, snapshot: snapshotCopy(rd)}
	if undurable {
		d.last = r.log.lastID()
	} // else zero: nothing unstable to acknowledge
	return d, true
}

// fill fills the zero message m with the note, addressed to node self.
func (d *durableNote) fill(m *pb.Message, self uint64) {
	m.Type, m.From, m.To, m.Term = pb.MsgStorageAppendResp, LocalAppendThread, self, d.term
	m.LogTerm, m.Index = d.last.term, d.last.index
	m.Snapshot = d.snapshot
}

// fillAppliedNote fills the zero message m, addressed to node self, with the
// note that ents (and all committed entries handed out before them) are
// applied.
func fillAppliedNote(m *pb.Message, self uint64, ents []pb.Entry) {
	m.Type, m.From, m.To, m.Entries = pb.MsgStorageApplyResp, LocalApplyThread, self, ents
}

// snapshotCopy returns a pointer to a copy of rd's snapshot, or nil if rd has
// none. Each storage message gets its own copy, independent of the Ready.
func snapshotCopy(rd *Ready) *pb.Snapshot {
	if !hasSnapshot(&rd.Snapshot) {
		return nil
	}
	snap := rd.Snapshot
	return &snap
}

// addMessage appends a zero message to *q and returns it, to be filled in
// place: built elsewhere and then appended, a message is copied twice.
func addMessage(q *[]pb.Message) *pb.Message {
	*q = append(*q, pb.Message{})
	return &(*q)[len(*q)-1]
}
