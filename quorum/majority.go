package quorum

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/raftkit/raft/internal/commitrule"
)

// MajorityConfig is a set of voter IDs in which any strict majority
// (len/2+1 voters) makes a decision.
//
// It is a plain map so that callers can build and copy it freely; none of
// its methods modify it.
type MajorityConfig map[uint64]struct{}

// sortedIDs returns the voter IDs in ascending order, or nil when there are
// none.
func (c MajorityConfig) sortedIDs() []uint64 {
	if len(c) == 0 {
		return nil
	}
	ids := make([]uint64, 0, len(c))
	for id := range c {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// String prints the voters sorted and space-separated in parentheses, e.g.
// "(1 2 3)"; an empty configuration prints "()".
func (c MajorityConfig) String() string {
	var b strings.Builder
	b.WriteByte('(')
	for i, id := range c.sortedIDs() {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(strconv.FormatUint(id, 10))
	}
	b.WriteByte(')')
	return b.String()
}

// Slice returns the voter IDs in ascending order (nil for an empty
// configuration). The slice is freshly allocated and owned by the caller.
func (c MajorityConfig) Slice() []uint64 {
	return c.sortedIDs()
}

// voterAck is one row of the Describe table.
type voterAck struct {
	id    uint64
	idx   Index
	known bool
	// rank is the length of the row's bar: the voter's position when all
	// voters are ordered by (idx, id), or 0 when the voter's index equals the
	// one before it, so equal indexes draw equal bars.
	rank int
}

// Describe draws a table of the voters' acknowledged indexes, one row per
// voter sorted by ID, for tests and debugging. Each known index gets a bar
// whose length grows with the index's rank among the voters, which makes it
// easy to see which index a majority has reached; a voter with no known
// index shows "?". An empty configuration prints "<empty majority quorum>"
// (with no trailing newline); otherwise every line ends in a newline.
func (c MajorityConfig) Describe(l AckedIndexer) string {
	n := len(c)
	if n == 0 {
		return "<empty majority quorum>"
	}

	rows := make([]voterAck, 0, n)
	for id := range c {
		// The index is shown as reported even when it is not "found": an
		// indexer that returns a placeholder value with found=false gets
		// that value sorted and printed, which is what etcd/raft does too.
		idx, known := l.AckedIndex(id)
		rows = append(rows, voterAck{id: id, idx: idx, known: known})
	}

	slices.SortFunc(rows, func(a, b voterAck) int {
		if a.idx != b.idx {
			if a.idx < b.idx {
				return -1
			}
			return 1
		}
		return compareIDs(a.id, b.id)
	})
	for i := 1; i < n; i++ {
		if rows[i].idx > rows[i-1].idx {
			rows[i].rank = i
		}
	}
	slices.SortFunc(rows, func(a, b voterAck) int { return compareIDs(a.id, b.id) })

	var b strings.Builder
	pad := strings.Repeat(" ", n)
	b.WriteString(pad)
	b.WriteString("    idx\n")
	for _, r := range rows {
		if r.known {
			// rank <= n-1, so at least one space always follows the '>'.
			b.WriteString(strings.Repeat("x", r.rank))
			b.WriteByte('>')
			b.WriteString(pad[r.rank:])
		} else {
			b.WriteByte('?')
			b.WriteString(pad)
		}
		fmt.Fprintf(&b, " %5d    (id=%d)\n", uint64(r.idx), r.id)
	}
	return b.String()
}

func compareIDs(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// CommittedIndex returns the highest index that a majority of the voters
// have acknowledged according to l.
//
// Voters l knows nothing about count as having acknowledged nothing, so the
// result is 0 until a majority has reported. An empty configuration returns
// math.MaxUint64: joined with another configuration it then defers to the
// other one (see JointConfig.CommittedIndex).
//
// For up to commitrule.StackVoters voters this does not allocate.
func (c MajorityConfig) CommittedIndex(l AckedIndexer) Index {
	n := len(c)
	var buf [commitrule.StackVoters]Index
	acked := buf[:0]
	if n > len(buf) {
		acked = make([]Index, 0, n)
	}
	// Invariant: AckedIndex is asked once per voter, so acked never grows
	// beyond n and the append below never reallocates.
	for id := range c {
		if idx, ok := l.AckedIndex(id); ok {
			acked = append(acked, idx)
		}
	}
	return commitrule.CommittedIndex(acked, n)
}

// VoteResult tallies votes (true for yes, false for no) cast by the voters
// of c; entries for IDs outside c are ignored. The vote is won once a
// majority said yes, lost once so many said no that the remaining voters
// cannot make a majority, and pending otherwise.
//
// An empty configuration always returns VoteWon, so that in a JointConfig
// with one empty half the other half alone decides.
func (c MajorityConfig) VoteResult(votes map[uint64]bool) VoteResult {
	n := len(c)
	if n == 0 {
		return VoteWon
	}
	var yes, no int
	for id := range c {
		v, ok := votes[id]
		switch {
		case !ok:
		case v:
			yes++
		default:
			no++
		}
	}
	quorum := n/2 + 1
	if yes >= quorum {
		return VoteWon
	}
	// n-no voters could still say yes (those who did plus those who have
	// not answered).
	if n-no < quorum {
		return VoteLost
	}
	return VotePending
}
