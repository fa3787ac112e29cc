package quorum

// JointConfig is two majority configurations that must both agree: an index
// is committed only when it is committed in each half, and an election is
// won only when it is won in each half. The halves may share voters.
//
// Raft uses it during a membership change (joint consensus, Raft thesis
// §4.3): element 0 holds the incoming voters and element 1 the outgoing
// ones. Outside a change element 1 is empty, and since an empty
// MajorityConfig commits everything and wins every vote, the JointConfig
// then behaves exactly like its element 0.
type JointConfig [2]MajorityConfig

// String prints the incoming half, followed by "&&" and the outgoing half
// when that one is non-empty, e.g. "(1 2 3)&&(1 2)".
func (c JointConfig) String() string {
	if len(c[1]) == 0 {
		return c[0].String()
	}
	return c[0].String() + "&&" + c[1].String()
}

// IDs returns the union of the voters of both halves as a new map owned by
// the caller.
func (c JointConfig) IDs() map[uint64]struct{} {
	ids := make(map[uint64]struct{}, len(c[0])+len(c[1]))
	for _, half := range c {
		for id := range half {
			ids[id] = struct{}{}
		}
	}
	return ids
}

// Describe draws the table of MajorityConfig.Describe for the union of the
// two halves.
func (c JointConfig) Describe(l AckedIndexer) string {
	return MajorityConfig(c.IDs()).Describe(l)
}

// CommittedIndex returns the highest index committed in both halves, that
// is the smaller of the two halves' committed indexes.
func (c JointConfig) CommittedIndex(l AckedIndexer) Index {
	return min(c[0].CommittedIndex(l), c[1].CommittedIndex(l))
}

// VoteResult tallies votes in both halves: a loss in either half loses the
// election, a win needs a win in both, and anything else is pending.
func (c JointConfig) VoteResult(votes map[uint64]bool) VoteResult {
	in, out := c[0].VoteResult(votes), c[1].VoteResult(votes)
	switch {
	case in == VoteLost || out == VoteLost:
		return VoteLost
	case in == VoteWon && out == VoteWon:
		return VoteWon
	}
	return VotePending
}
