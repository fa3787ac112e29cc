package raft

import (
	"maps"
	"math"
	"slices"
)

// commitStackVoters is how many voters committedIndex handles without
// allocating; configurations are rarely larger.
const commitStackVoters = 8

// committedIndex is r.trk.Committed(): the highest index acknowledged by a
// quorum of the voters, judged by their Match. A leader asks on every
// acknowledgement, and the quorum package ranges over the voter set, a map
// whose iteration costs more than the rest of the computation together. For
// the usual non-joint configuration the voters are visited in a cached
// order instead, r.voterOrder, checked on every use like peerOrder (see
// visitPeers): sorted and duplicate-free, so as many IDs as voters, each a
// voter, means exactly the voters. Joint configurations, and larger ones,
// go to the tracker.
func (r *raft) committedIndex() uint64 {
	voters := r.trk.Voters[0]
	if len(r.trk.Voters[1]) != 0 || len(voters) > commitStackVoters {
		return r.trk.Committed()
	}
	if !r.voterOrderValid() {
		r.voterOrder = slices.Sorted(maps.Keys(voters))
	}
	n := len(r.voterOrder)
	if n == 0 {
		// No voters constrain the commit index (as quorum.MajorityConfig).
		return math.MaxUint64
	}
	var buf [commitStackVoters]uint64
	acked := buf[:0]
	for _, id := range r.voterOrder {
		// A voter without progress has acknowledged nothing; it is left
		// out, as the tracker's indexer does.
		if pr, ok := r.trk.Progress[id]; ok {
			acked = append(acked, pr.Match)
		}
	}
	need := n/2 + 1
	if len(acked) < need {
		return 0
	}
	// The need-th largest acknowledged index is the highest one that a
	// quorum has reached. Insertion sort: a handful of values.
	for i := 1; i < len(acked); i++ {
		for j := i; j > 0 && acked[j] < acked[j-1]; j-- {
			acked[j], acked[j-1] = acked[j-1], acked[j]
		}
	}
	return acked[len(acked)-need]
}

// voterOrderValid reports whether r.voterOrder holds exactly the IDs of
// the (non-joint) voter set; see committedIndex.
func (r *raft) voterOrderValid() bool {
	voters := r.trk.Voters[0]
	if len(r.voterOrder) != len(voters) {
		return false
	}
	for _, id := range r.voterOrder {
		if _, ok := voters[id]; !ok {
			return false
		}
	}
	return true
}
