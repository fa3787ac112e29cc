package raft

import (
	"fmt"
	"strings"

	pb "github.com/raftkit/raft/raftpb"
	"github.com/raftkit/raft/tracker"
)

// Status is a snapshot of a node's state for monitoring: BasicStatus plus
// the active configuration and, on a leader only, every member's progress.
type Status struct {
	BasicStatus
	Config   tracker.Config
	Progress map[uint64]tracker.Progress
}

// BasicStatus is the part of Status that is cheap to collect: no
// allocations for the configuration or progress.
type BasicStatus struct {
	ID uint64

	pb.HardState
	SoftState

	Applied uint64

	LeadTransferee uint64
}

// collectBasicStatus collects r's BasicStatus.
func collectBasicStatus(r *raft) BasicStatus {
	return BasicStatus{
		ID:             r.id,
		HardState:      r.durableState(),
		SoftState:      r.volatileState(),
		Applied:        r.log.applied,
		LeadTransferee: r.leadTransferee,
	}
}

// collectStatus collects r's Status. The progress is copied (window included),
// so the result shares nothing with r.
func collectStatus(r *raft) Status {
	s := Status{BasicStatus: collectBasicStatus(r)}
	if s.RaftState == StateLeader {
		s.Progress = copyProgress(r)
	}
	s.Config = r.trk.Config.Clone()
	return s
}

// copyProgress deep-copies every member's progress. The copies' windows
// share one array, allocated once: each copy still has an Inflights of its
// own, and nothing is shared with r. (Clone is inlined, so the window it
// returns is copied out of it without escaping.) The members are read in
// r.order, a slice, rather than by iterating the Progress map.
func copyProgress(r *raft) map[uint64]tracker.Progress {
	out := make(map[uint64]tracker.Progress, len(r.trk.Progress))
	windows := make([]tracker.Inflights, len(r.trk.Progress))
	k := 0
	r.order.Visit(func(id uint64, pr *tracker.Progress) {
		cp := *pr
		windows[k] = *pr.Inflights.Clone()
		cp.Inflights = &windows[k]
		k++
		out[id] = cp
	})
	return out
}

// MarshalJSON encodes the status in etcd/raft's JSON shape: IDs in hex,
// progress as match, next and state per member.
func (s Status) MarshalJSON() ([]byte, error) {
	var b strings.Builder
	fmt.Fprintf(&b, `{"id":"%x","term":%d,"vote":"%x","commit":%d,"lead":"%x","raftState":%q,"applied":%d,"progress":{`,
		s.ID, s.Term, s.Vote, s.Commit, s.Lead, s.RaftState, s.Applied)
	sep := ""
	for id, pr := range s.Progress {
		fmt.Fprintf(&b, `%s"%x":{"match":%d,"next":%d,"state":%q}`, sep, id, pr.Match, pr.Next, pr.State)
		sep = ","
	}
	fmt.Fprintf(&b, `},"leadtransferee":"%x"}`, s.LeadTransferee)
	return []byte(b.String()), nil
}

// String is the JSON encoding of the status.
func (s Status) String() string {
	b, _ := s.MarshalJSON() // never fails
	return string(b)
}
