package raft

import (
	"fmt"
	"math"

	pb "github.com/raftkit/raft/raftpb"
)

// Validation at Step's entry: a message is checked once, here, against the
// message-class table of msgtypes.go and the node's state, so that no
// handler re-validates what a peer sent.

// malformed returns why m cannot be a message that a correct peer or this
// node's own machinery sends, or "" if it might be. Step drops such
// messages: acting on them would break invariants that the rest of the
// state machine relies on (and that etcd/raft would panic on).
func (r *raft) malformed(m *pb.Message) string {
	class := classOf(m.Type)
	switch {
	case class.has(classTermed) && m.Term == 0:
		return "missing term"
	case m.Term == math.MaxUint64:
		// No term can follow it: a node that entered it could never
		// campaign again without wrapping around to 0.
		return "term at the end of the term space"
	case class.has(classFromPeer) && (m.From == None || m.From == r.id || IsLocalMsgTarget(m.From)):
		return "impossible sender"
	case (m.Type == pb.MsgProp || m.Type == pb.MsgReadIndex) && m.Term != 0:
		return "a term on a message that is forwarded without one"
	}
	switch m.Type {
	case pb.MsgApp:
		return malformedAppend(m)
	case pb.MsgAppResp:
		return r.malformedAppendResp(m)
	case pb.MsgHeartbeat:
		return r.malformedHeartbeat(m)
	case pb.MsgProp:
		return malformedProposal(m)
	case pb.MsgReadIndex:
		if len(m.Entries) != 1 {
			return fmt.Sprintf("a read request carries %d entries, want 1", len(m.Entries))
		}
	case pb.MsgVote, pb.MsgPreVote:
		// A candidate's log holds no entry of a term it has not reached
		// (a pre-candidate's Term is the one it would campaign in).
		if m.LogTerm > m.Term {
			return fmt.Sprintf("last log term %d is past the campaign's term %d", m.LogTerm, m.Term)
		}
	case pb.MsgSnap:
		// A leader's snapshot covers entries of its term or earlier.
		if m.Snapshot != nil && m.Snapshot.Metadata.Term > m.Term {
			return fmt.Sprintf("snapshot term %d is past the sender's term %d", m.Snapshot.Metadata.Term, m.Term)
		}
	case pb.MsgStorageApplyResp:
		return r.malformedApplyResp(m)
	case pb.MsgStorageAppendResp:
		return r.malformedAppendedSnap(m)
	}
	return ""
}

// malformedAppend checks that the entries form a slice of the sender's log.
func malformedAppend(m *pb.Message) string {
	if err := appendedSlice(m).check(); err != nil {
		return err.Error()
	}
	return ""
}

// malformedAppendResp rejects an acknowledgement beyond the log of a node
// leading the message's term: it never sent such entries. (Only a leader
// acts on acknowledgements, and only those of its own term.)
func (r *raft) malformedAppendResp(m *pb.Message) string {
	if r.state != StateLeader || m.Reject || m.Term != r.Term {
		return ""
	}
	if last := r.log.last(); m.Index > last {
		return fmt.Sprintf("acknowledges index %d beyond the last index %d", m.Index, last)
	}
	return ""
}

// malformedHeartbeat rejects a current heartbeat whose commit index lies
// beyond what the node holds: a leader only sends commit indexes that the
// follower has acknowledged in the leader's term.
func (r *raft) malformedHeartbeat(m *pb.Message) string {
	if m.Term < r.Term {
		return "" // stale; it is answered without being acted on
	}
	if last := r.log.last(); m.Commit > last {
		return fmt.Sprintf("commit index %d is beyond the last index %d", m.Commit, last)
	}
	return ""
}

// malformedProposal rejects a proposal without entries, or with a conf
// change that does not decode.
func malformedProposal(m *pb.Message) string {
	if len(m.Entries) == 0 {
		return "empty proposal"
	}
	for i := range m.Entries {
		if _, err := decodeConfChange(&m.Entries[i]); err != nil {
			return fmt.Sprintf("entry %d: %v", i, err)
		}
	}
	return ""
}

// malformedApplyResp rejects a report of entries applied beyond the commit
// index: only committed entries are ever handed out for applying. (A report
// at or below the applied index is stale, not malformed: advanceApplied keeps
// the larger index.)
func (r *raft) malformedApplyResp(m *pb.Message) string {
	if n := len(m.Entries); n > 0 {
		if idx := m.Entries[n-1].Index; idx > r.log.committed {
			return fmt.Sprintf("reports index %d applied, beyond the commit index %d", idx, r.log.committed)
		}
	}
	return ""
}

// malformedAppendedSnap rejects a report of a persisted snapshot that the
// log never committed to.
func (r *raft) malformedAppendedSnap(m *pb.Message) string {
	if m.Snapshot != nil && m.Snapshot.Metadata.Index > r.log.committed {
		return fmt.Sprintf("reports a snapshot at %d, beyond the commit index %d",
			m.Snapshot.Metadata.Index, r.log.committed)
	}
	return ""
}
