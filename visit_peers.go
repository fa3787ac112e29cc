package raft

import (
	"maps"
	"slices"

	"github.com/raftkit/raft/tracker"
)

// visitPeersStack is how many members visitPeers handles without
// allocating; clusters are rarely larger.
const visitPeersStack = 8

// visitPeers calls f for every tracked member in ascending ID order, as
// trk.Visit does, but without collecting and sorting the IDs every time:
// a leader visits its members on every broadcast (each proposal, each
// heartbeat). f may change the Progress it is given but must not add or
// remove members.
//
// The order is cached in r.peerOrder, which is only ever a guess:
// trk.Progress is an exported map that confchange and tests replace or
// change without telling raft. Invariant relied on: peerOrder is sorted and
// has no duplicates, so if it has as many IDs as trk.Progress and each of
// them is tracked, it holds exactly the tracked IDs. That is checked on
// every call, with the same lookups that find the Progress to pass to f;
// when it fails the order is rebuilt.
func (r *raft) visitPeers(f func(id uint64, pr *tracker.Progress)) {
	var buf [visitPeersStack]*tracker.Progress
	prs, ok := r.peerOrderProgress(buf[:0])
	if !ok {
		r.peerOrder = slices.Sorted(maps.Keys(r.trk.Progress))
		prs = buf[:0]
		for _, id := range r.peerOrder {
			prs = append(prs, r.trk.Progress[id])
		}
	}
	for i, id := range r.peerOrder {
		f(id, prs[i])
	}
}

// peerOrderProgress appends to prs the Progress of every ID of peerOrder,
// and reports whether peerOrder is exactly the set of tracked IDs (see
// visitPeers).
func (r *raft) peerOrderProgress(prs []*tracker.Progress) ([]*tracker.Progress, bool) {
	if len(r.peerOrder) != len(r.trk.Progress) {
		return prs, false
	}
	for _, id := range r.peerOrder {
		pr := r.trk.Progress[id]
		if pr == nil {
			return prs, false
		}
		prs = append(prs, pr)
	}
	return prs, true
}
