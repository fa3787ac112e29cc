package raft

import pb "github.com/raftkit/raft/raftpb"

// What the application reports back about applying committed entries and
// snapshots, and what it sets off: the applied index moves, the applying
// budget is released, the uncommitted-size estimate shrinks, and a leader
// leaves a joint configuration that asked for it (AutoLeave).

// advanceApplied records that the application applied everything up to index,
// releasing size bytes of the applying budget. A leader in a joint
// configuration with AutoLeave proposes to leave it once the change that
// entered it is applied.
func (r *raft) advanceApplied(index uint64, size entryEncodingSize) {
	applied := max(index, r.log.applied)
	r.log.markApplied(applied, size)
	if r.trk.Config.AutoLeave && applied >= r.pendingConfIndex && r.state == StateLeader {
		r.proposeAutoLeave()
	}
}

// proposeAutoLeave proposes the empty ConfChangeV2 that leaves a joint
// configuration. Its empty payload is never refused for size; it is refused
// during a leadership transfer, and then retried on the next applied entry
// (the transfer either succeeds, and the new leader leaves, or fails).
func (r *raft) proposeAutoLeave() {
	m := pb.Message{Type: pb.MsgProp, Entries: []pb.Entry{{Type: pb.EntryConfChangeV2}}}
	if err := r.Step(m); err != nil {
		r.logger.Debugf("not initiating automatic transition out of joint configuration %s: %v", r.trk.Config, err)
		return
	}
	r.logger.Infof("initiating automatic transition out of joint configuration %s", r.trk.Config)
}

// snapshotApplied records that snapshot snap is durable and applied.
func (r *raft) snapshotApplied(snap *pb.Snapshot) {
	idx := snap.Metadata.Index
	r.log.markSnapshotDurable(idx)
	r.advanceApplied(idx, 0 /* size */)
}

// handleStorageApplyResp records what the apply thread applied.
func (r *raft) handleStorageApplyResp(m *pb.Message) {
	if n := len(m.Entries); n > 0 {
		r.advanceApplied(m.Entries[n-1].Index, r.log.pacedSize(m.Entries))
		r.uncommitted.release(payloadBytes(m.Entries))
	}
}
