package tracker

import (
	"maps"
	"slices"

	"github.com/raftkit/raft/internal/commitrule"
	"github.com/raftkit/raft/quorum"
)

// MemberOrder is one configuration's members in ascending ID order, with
// their Progress, worked out once when the configuration is installed. A
// leader visits its members on every broadcast and counts its voters'
// Match on every acknowledgement; ranging over the configuration's maps and
// sorting each time would cost more than the work itself.
//
// It describes the tracker it was made from at that moment: whoever
// replaces the tracker's Config or Progress map, or adds or removes
// Progress entries, must make a new one. The Progress values themselves may
// change freely: MemberOrder holds pointers to them. The zero MemberOrder
// has no members.
type MemberOrder struct {
	// peers are the IDs of every tracked member (voters and learners),
	// sorted; progress[i] is the Progress of peers[i].
	peers    []uint64
	progress []*Progress
	// voters are the IDs of the voters of either half, sorted.
	voters []uint64
	// halves holds, for each half of the joint configuration, the Progress
	// of its tracked voters (a voter without Progress has acknowledged
	// nothing and is left out) and its size.
	halves [2]voterHalf
}

// voterHalf is what the commit rule needs of one majority configuration.
type voterHalf struct {
	size     int
	progress []*Progress
}

// MakeMemberOrder returns the member order of p's current configuration.
func MakeMemberOrder(p *ProgressTracker) MemberOrder {
	o := MemberOrder{
		peers:  slices.Sorted(maps.Keys(p.Progress)),
		voters: p.VoterNodes(),
	}
	o.progress = make([]*Progress, len(o.peers))
	for i, id := range o.peers {
		o.progress[i] = p.Progress[id]
	}
	for i, half := range p.Voters {
		o.halves[i] = makeVoterHalf(half, p.Progress)
	}
	return o
}

// makeVoterHalf gathers, in ID order, the Progress of the voters of c that
// prs tracks.
func makeVoterHalf(c quorum.MajorityConfig, prs ProgressMap) voterHalf {
	h := voterHalf{size: len(c)}
	for _, id := range c.Slice() {
		if pr, ok := prs[id]; ok {
			h.progress = append(h.progress, pr)
		}
	}
	return h
}

// Visit calls f for every member, voters and learners, in ascending ID
// order, as ProgressTracker.Visit does. f may change the Progress it is
// given.
func (o *MemberOrder) Visit(f func(id uint64, pr *Progress)) {
	for i, id := range o.peers {
		f(id, o.progress[i])
	}
}

// lookupScanMax is the member count up to which Progress scans the sorted
// IDs instead of searching them: most groups have 3 to 7 members, and a
// short scan beats both a binary search and hashing the ID into the map.
const lookupScanMax = 8

// Progress returns the Progress of member id, or nil if id is not a
// member: what the tracker's Progress map holds for id, found without
// hashing (a leader looks up the sender of every response it steps).
func (o *MemberOrder) Progress(id uint64) *Progress {
	if len(o.peers) <= lookupScanMax {
		for i, p := range o.peers {
			if p == id {
				return o.progress[i]
			}
		}
		return nil
	}
	if i, ok := slices.BinarySearch(o.peers, id); ok {
		return o.progress[i]
	}
	return nil
}

// Voters returns the IDs of the voters of either half, sorted. The slice
// belongs to o: callers must not modify it.
func (o *MemberOrder) Voters() []uint64 { return o.voters }

// Committed returns what ProgressTracker.Committed returns for the same
// tracker: the highest index that the voters of both halves have
// acknowledged by quorum, judged by their Match. It does not allocate for
// halves of up to commitrule.StackVoters voters.
func (o *MemberOrder) Committed() uint64 {
	return min(o.halves[0].committed(), o.halves[1].committed())
}

// committed applies the commit rule to one half.
func (h *voterHalf) committed() uint64 {
	var buf [commitrule.StackVoters]uint64
	acked := buf[:0]
	if len(h.progress) > len(buf) {
		acked = make([]uint64, 0, len(h.progress))
	}
	for _, pr := range h.progress {
		acked = append(acked, pr.Match)
	}
	return commitrule.CommittedIndex(acked, h.size)
}
