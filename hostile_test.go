package raft

import (
	"errors"
	"math"
	"testing"

	pb "github.com/raftkit/raft/raftpb"
)

// nodeSnapshot is the part of a node's state a hostile message must not
// corrupt.
type nodeSnapshot struct {
	term, vote, commit, last, lastTerm uint64
	state                              StateType
	lead                               uint64
}

func snapshotOf(r *raft) nodeSnapshot {
	last := r.log.lastID()
	return nodeSnapshot{term: r.Term, vote: r.Vote, commit: r.log.committed, last: last.index,
		lastTerm: last.term, state: r.state, lead: r.lead}
}

// hostileOutcome is what Step must do with a hostile message.
type hostileOutcome int

const (
	// dropped: refused at the entry as impossible, counted, logged, and the
	// state is untouched.
	dropped hostileOutcome = iota
	// refused: RawNode.Step returns an error the caller can act on, and the
	// state is untouched.
	refused
	// harmless: plausible from a correct peer, so handled by the protocol's
	// ordinary rules; the check says what those rules must guarantee.
	harmless
)

// hostileCase is one impossible or hostile value in a field a peer
// controls. HOSTILE.md in rafttest/sim lists the decisions.
type hostileCase struct {
	name string
	at   uint64 // 1 is the leader, 2 a follower, 4 a learner
	msg  func(term uint64) pb.Message
	want hostileOutcome
	// err is the error RawNode.Step must return (refused cases).
	err error
	// check verifies what a harmless case must leave behind.
	check func(t *testing.T, before, after nodeSnapshot)
}

func unchanged(t *testing.T, before, after nodeSnapshot) {
	t.Helper()
	if before != after {
		t.Fatalf("state changed: %+v -> %+v", before, after)
	}
}

// hostileCases lists every hostile message case, grouped by the field the
// peer controls.
func hostileCases() []hostileCase {
	var cases []hostileCase
	for _, group := range [][]hostileCase{
		hostileSenderCases(),
		hostileLocalOnlyCases(),
		hostileTermCases(),
		hostileIndexCases(),
		hostileEntryCases(),
		hostileSnapshotCases(),
		hostileOtherCases(),
	} {
		cases = append(cases, group...)
	}
	return cases
}

// hostileEnts returns entries of the given term at the given indexes.
func hostileEnts(term uint64, idx ...uint64) []pb.Entry {
	var out []pb.Entry
	for _, i := range idx {
		out = append(out, pb.Entry{Index: i, Term: term})
	}
	return out
}

// hostileSenderCases are messages whose sender is impossible or unknown.
func hostileSenderCases() []hostileCase {
	return []hostileCase{
		{name: "From=0", at: 2, want: dropped, msg: func(term uint64) pb.Message {
			return pb.Message{Type: pb.MsgApp, From: 0, Term: term, Index: 3, LogTerm: term}
		}},
		{name: "From=self", at: 2, want: dropped, msg: func(term uint64) pb.Message {
			return pb.Message{Type: pb.MsgHeartbeat, From: 2, Term: term}
		}},
		{name: "From=storage thread on a peer type", at: 2, want: dropped, msg: func(term uint64) pb.Message {
			return pb.Message{Type: pb.MsgVote, From: LocalAppendThread, Term: term + 1}
		}},
		{name: "response from a non-member", at: 1, want: refused, err: ErrStepPeerNotFound, msg: func(term uint64) pb.Message {
			return pb.Message{Type: pb.MsgAppResp, From: 9, Term: term, Index: 3}
		}},
		{name: "heartbeat response from a non-member", at: 1, want: refused, err: ErrStepPeerNotFound, msg: func(term uint64) pb.Message {
			return pb.Message{Type: pb.MsgHeartbeatResp, From: 9, Term: term}
		}},
		{name: "vote request from a non-member", at: 2, want: harmless, check: func(t *testing.T, b, a nodeSnapshot) {
			// A candidate our configuration does not know yet may be real
			// (our configuration may lag), so the vote rules apply; an
			// out-of-date log gets no vote even in a new term.
			if a.vote == 9 || a.commit != b.commit || a.last != b.last {
				t.Fatalf("%+v -> %+v", b, a)
			}
		}, msg: func(term uint64) pb.Message {
			return pb.Message{Type: pb.MsgVote, From: 9, Term: term + 1, Index: 1, LogTerm: 1}
		}},
	}
}

// hostileLocalOnlyCases are message types only the node itself may
// produce, arriving from the network.
func hostileLocalOnlyCases() []hostileCase {
	return []hostileCase{
		{name: "MsgHup from the network", at: 2, want: refused, err: ErrStepLocalMsg, msg: func(uint64) pb.Message {
			return pb.Message{Type: pb.MsgHup, From: 3}
		}},
		{name: "MsgBeat from the network", at: 1, want: refused, err: ErrStepLocalMsg, msg: func(uint64) pb.Message {
			return pb.Message{Type: pb.MsgBeat, From: 3}
		}},
		{name: "MsgCheckQuorum from the network", at: 1, want: refused, err: ErrStepLocalMsg, msg: func(uint64) pb.Message {
			return pb.Message{Type: pb.MsgCheckQuorum, From: 3}
		}},
		{name: "MsgSnapStatus from the network", at: 1, want: refused, err: ErrStepLocalMsg, msg: func(uint64) pb.Message {
			return pb.Message{Type: pb.MsgSnapStatus, From: 3, Reject: true}
		}},
		{name: "MsgUnreachable from the network", at: 1, want: refused, err: ErrStepLocalMsg, msg: func(uint64) pb.Message {
			return pb.Message{Type: pb.MsgUnreachable, From: 3}
		}},
		{name: "MsgStorageAppend from the network", at: 2, want: refused, err: ErrStepLocalMsg, msg: func(term uint64) pb.Message {
			return pb.Message{Type: pb.MsgStorageAppend, From: 3, Term: term, Entries: hostileEnts(term, 9)}
		}},
		{name: "MsgStorageApplyResp from the network", at: 2, want: refused, err: ErrStepLocalMsg, msg: func(uint64) pb.Message {
			return pb.Message{Type: pb.MsgStorageApplyResp, From: 3, Entries: hostileEnts(1, 3)}
		}},
	}
}

// hostileTermCases are messages whose term is impossible.
func hostileTermCases() []hostileCase {
	return []hostileCase{
		{name: "term overflow", at: 2, want: dropped, msg: func(uint64) pb.Message {
			return pb.Message{Type: pb.MsgHeartbeat, From: 1, Term: math.MaxUint64}
		}},
		{name: "term overflow on a vote", at: 2, want: dropped, msg: func(uint64) pb.Message {
			return pb.Message{Type: pb.MsgVote, From: 3, Term: math.MaxUint64, Index: 100, LogTerm: 100}
		}},
		{name: "missing term", at: 2, want: dropped, msg: func(uint64) pb.Message {
			return pb.Message{Type: pb.MsgApp, From: 1, Index: 3, LogTerm: 2}
		}},
		{name: "term on a forwarded proposal", at: 1, want: dropped, msg: func(term uint64) pb.Message {
			return pb.Message{Type: pb.MsgProp, From: 2, Term: term, Entries: []pb.Entry{{Data: []byte("x")}}}
		}},
		{name: "vote request whose last log term is past its term", at: 2, want: dropped, msg: func(term uint64) pb.Message {
			return pb.Message{Type: pb.MsgVote, From: 3, Term: term + 1, Index: 2, LogTerm: term + 5}
		}},
	}
}

// hostileIndexCases are messages whose indexes or commit indexes are past
// what the receiver knows.
func hostileIndexCases() []hostileCase {
	return []hostileCase{
		{name: "heartbeat commit beyond the log", at: 2, want: dropped, msg: func(term uint64) pb.Message {
			return pb.Message{Type: pb.MsgHeartbeat, From: 1, Term: term, Commit: math.MaxUint64}
		}},
		{name: "append commit beyond its entries", at: 2, want: harmless, check: func(t *testing.T, b, a nodeSnapshot) {
			// The commit index is capped at the last entry the append
			// proves we share with the leader.
			if a.commit > a.last || a.last != b.last {
				t.Fatalf("%+v -> %+v", b, a)
			}
		}, msg: func(term uint64) pb.Message {
			return pb.Message{Type: pb.MsgApp, From: 1, Term: term, Index: 3, LogTerm: term, Commit: 1 << 40}
		}},
		{name: "append after an index beyond the log", at: 2, want: harmless, check: func(t *testing.T, b, a nodeSnapshot) {
			// Rejected with a hint: the previous entry does not match.
			unchanged(t, b, a)
		}, msg: func(term uint64) pb.Message {
			return pb.Message{Type: pb.MsgApp, From: 1, Term: term, Index: math.MaxUint64 - 1, LogTerm: term, Entries: hostileEnts(term, math.MaxUint64)}
		}},
		{name: "acknowledgement beyond the leader's log", at: 1, want: dropped, msg: func(term uint64) pb.Message {
			return pb.Message{Type: pb.MsgAppResp, From: 2, Term: term, Index: 1 << 40}
		}},
		{name: "rejection hint beyond the leader's log", at: 1, want: harmless, check: unchanged, msg: func(term uint64) pb.Message {
			return pb.Message{Type: pb.MsgAppResp, From: 2, Term: term, Index: 3, Reject: true, RejectHint: 1 << 40, LogTerm: term}
		}},
		{name: "apply report beyond the commit index", at: 2, want: dropped, msg: func(uint64) pb.Message {
			return pb.Message{Type: pb.MsgStorageApplyResp, From: LocalApplyThread, Entries: hostileEnts(1, 1<<40)}
		}},
		{name: "persisted-snapshot report beyond the commit index", at: 2, want: dropped, msg: func(term uint64) pb.Message {
			return pb.Message{Type: pb.MsgStorageAppendResp, From: LocalAppendThread, Term: term,
				Snapshot: &pb.Snapshot{Metadata: pb.SnapshotMetadata{Index: 1 << 40, Term: term}}}
		}},
	}
}

// hostileEntryCases are messages whose entries are malformed or hostile.
func hostileEntryCases() []hostileCase {
	return []hostileCase{
		{name: "entries with a gap", at: 2, want: dropped, msg: func(term uint64) pb.Message {
			return pb.Message{Type: pb.MsgApp, From: 1, Term: term, Index: 3, LogTerm: term, Entries: append(hostileEnts(term, 4), hostileEnts(term, 6)...)}
		}},
		{name: "entries not following the previous index", at: 2, want: dropped, msg: func(term uint64) pb.Message {
			return pb.Message{Type: pb.MsgApp, From: 1, Term: term, Index: 3, LogTerm: term, Entries: hostileEnts(term, 3)}
		}},
		{name: "entries with decreasing terms", at: 2, want: dropped, msg: func(term uint64) pb.Message {
			return pb.Message{Type: pb.MsgApp, From: 1, Term: term, Index: 3, LogTerm: term, Entries: append(hostileEnts(term, 4), hostileEnts(term-1, 5)...)}
		}},
		{name: "entries from a future term", at: 2, want: dropped, msg: func(term uint64) pb.Message {
			return pb.Message{Type: pb.MsgApp, From: 1, Term: term, Index: 3, LogTerm: term, Entries: hostileEnts(term+3, 4)}
		}},
		{name: "previous entry from a future term", at: 2, want: dropped, msg: func(term uint64) pb.Message {
			return pb.Message{Type: pb.MsgApp, From: 1, Term: term, Index: 3, LogTerm: term + 1}
		}},
		{name: "entries that rewrite committed history", at: 2, want: harmless, check: func(t *testing.T, b, a nodeSnapshot) {
			// Below the commit index every log agrees with the leader's, so
			// the follower answers with its commit index and keeps its log.
			unchanged(t, b, a)
		}, msg: func(term uint64) pb.Message {
			return pb.Message{Type: pb.MsgApp, From: 1, Term: term, Index: 1, LogTerm: 1, Entries: hostileEnts(term, 2)}
		}},
		{name: "empty proposal", at: 1, want: dropped, msg: func(uint64) pb.Message {
			return pb.Message{Type: pb.MsgProp, From: 2}
		}},
		{name: "undecodable conf change proposal", at: 1, want: dropped, msg: func(uint64) pb.Message {
			return pb.Message{Type: pb.MsgProp, From: 2, Entries: []pb.Entry{{Type: pb.EntryConfChangeV2, Data: []byte{0xff, 0xff}}}}
		}},
		{name: "oversized entry", at: 2, want: harmless, check: func(t *testing.T, b, a nodeSnapshot) {
			// Size limits bind the sender; a receiver that refused a large
			// entry could never catch up. It is appended.
			if a.last != b.last+1 {
				t.Fatalf("%+v -> %+v", b, a)
			}
		}, msg: func(term uint64) pb.Message {
			big := []pb.Entry{{Index: 4, Term: term, Data: make([]byte, 8<<20)}}
			return pb.Message{Type: pb.MsgApp, From: 1, Term: term, Index: 3, LogTerm: term, Commit: 3, Entries: big}
		}},
		{name: "read request without a context entry", at: 1, want: dropped, msg: func(uint64) pb.Message {
			return pb.Message{Type: pb.MsgReadIndex, From: 2}
		}},
	}
}

// hostileSnapshotCases are snapshot messages with impossible contents.
func hostileSnapshotCases() []hostileCase {
	return []hostileCase{
		{name: "snapshot older than the log", at: 2, want: harmless, check: func(t *testing.T, b, a nodeSnapshot) {
			unchanged(t, b, a)
		}, msg: func(term uint64) pb.Message {
			return pb.Message{Type: pb.MsgSnap, From: 1, Term: term, Snapshot: &pb.Snapshot{Metadata: pb.SnapshotMetadata{
				Index: 1, Term: 1, ConfState: pb.ConfState{Voters: []uint64{1, 2, 3}}}}}
		}},
		{name: "snapshot missing", at: 2, want: harmless, check: func(t *testing.T, b, a nodeSnapshot) {
			unchanged(t, b, a)
		}, msg: func(term uint64) pb.Message {
			return pb.Message{Type: pb.MsgSnap, From: 1, Term: term}
		}},
		{name: "snapshot with an impossible configuration", at: 2, want: harmless, check: func(t *testing.T, b, a nodeSnapshot) {
			unchanged(t, b, a)
		}, msg: func(term uint64) pb.Message {
			return pb.Message{Type: pb.MsgSnap, From: 1, Term: term, Snapshot: &pb.Snapshot{Metadata: pb.SnapshotMetadata{
				Index: 50, Term: term, ConfState: pb.ConfState{Voters: []uint64{1, 2}, Learners: []uint64{2}}}}}
		}},
		{name: "snapshot without this node", at: 2, want: harmless, check: func(t *testing.T, b, a nodeSnapshot) {
			unchanged(t, b, a)
		}, msg: func(term uint64) pb.Message {
			return pb.Message{Type: pb.MsgSnap, From: 1, Term: term, Snapshot: &pb.Snapshot{Metadata: pb.SnapshotMetadata{
				Index: 50, Term: term, ConfState: pb.ConfState{Voters: []uint64{1, 3}}}}}
		}},
		{name: "snapshot from a future term", at: 2, want: dropped, msg: func(term uint64) pb.Message {
			return pb.Message{Type: pb.MsgSnap, From: 1, Term: term, Snapshot: &pb.Snapshot{Metadata: pb.SnapshotMetadata{
				Index: 50, Term: term + 2, ConfState: pb.ConfState{Voters: []uint64{1, 2, 3}}}}}
		}},
	}
}

// hostileOtherCases are the remaining requests a peer may send out of
// place.
func hostileOtherCases() []hostileCase {
	return []hostileCase{
		{name: "TimeoutNow to a learner", at: 4, want: harmless, check: func(t *testing.T, b, a nodeSnapshot) {
			// Learners never campaign.
			unchanged(t, b, a)
		}, msg: func(term uint64) pb.Message {
			return pb.Message{Type: pb.MsgTimeoutNow, From: 1, Term: term}
		}},
		{name: "transfer to a non-member", at: 1, want: harmless, check: func(t *testing.T, b, a nodeSnapshot) {
			unchanged(t, b, a)
		}, msg: func(uint64) pb.Message {
			return pb.Message{Type: pb.MsgTransferLeader, From: 9}
		}},
		{name: "unknown message type", at: 2, want: harmless, check: func(t *testing.T, b, a nodeSnapshot) {
			unchanged(t, b, a)
		}, msg: func(term uint64) pb.Message {
			return pb.Message{Type: pb.MessageType(99), From: 1, Term: term}
		}},
	}
}

// TestHostilePeerMessages steps, for every field a peer controls, a message
// with an impossible value into a node of a working group, through
// RawNode.Step as an application would, and checks the decision recorded in
// rafttest/sim/HOSTILE.md: dropped and counted, refused with an error, or
// handled by the ordinary rules without corrupting state. None may panic,
// and the group must still commit afterwards.
func TestHostilePeerMessages(t *testing.T) {
	for _, tc := range hostileCases() {
		t.Run(tc.name, func(t *testing.T) {
			nw := newTestNet(t, 3, []uint64{4}, nil)
			nw.campaign(1)
			if err := nw.propose(1, "a"); err != nil {
				t.Fatal(err)
			}
			n := nw.node(tc.at)
			r := n.r()
			term := r.Term
			m := tc.msg(term)
			m.To = tc.at
			before, dropsBefore := snapshotOf(r), r.droppedMsgs
			err := n.rn.Step(m)
			after := snapshotOf(r)
			switch tc.want {
			case dropped:
				if r.droppedMsgs != dropsBefore+1 {
					t.Fatalf("not dropped (err %v): %+v -> %+v", err, before, after)
				}
				unchanged(t, before, after)
			case refused:
				if !errors.Is(err, tc.err) {
					t.Fatalf("Step returned %v, want %v", err, tc.err)
				}
				unchanged(t, before, after)
			case harmless:
				if r.droppedMsgs != dropsBefore {
					t.Fatal("dropped a message the protocol handles")
				}
				tc.check(t, before, after)
			}
			// The group recovers whatever the message did: the node
			// settles, and a new proposal commits everywhere.
			nw.handleReady(tc.at)
			nw.queue = nil
			nw.tickAll(30)
			nw.settle()
			lead := nw.leader()
			if lead == None {
				t.Fatal("no leader after the hostile message")
			}
			if err := nw.propose(lead, "after"); err != nil {
				t.Fatal(err)
			}
			want := nw.node(lead).r().log.committed
			for _, id := range []uint64{1, 2, 3} {
				if got := nw.node(id).r().log.committed; got != want {
					t.Fatalf("node %d committed %d, leader %d", id, got, want)
				}
			}
		})
	}
}
