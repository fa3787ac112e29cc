// Package quorum decides, for a set of voters, which log index a quorum has
// acknowledged and whether an election has been won.
//
// Two shapes of configuration exist: a MajorityConfig, where any strict
// majority of its voters decides, and a JointConfig, which is two majority
// configurations that must both agree. The joint form is what Raft uses while
// it moves from one membership to another (Raft thesis §4.3, joint
// consensus): during the transition neither the old nor the new voters may
// decide on their own.
//
// The package is pure: it keeps no state and does no I/O, so callers (the
// progress tracker, the confchange package) can evaluate configurations that
// are not yet in use.
package quorum

import (
	"math"
	"strconv"
)

// Index is a position in the Raft log as seen by the quorum computations.
//
// The largest representable value stands for "unbounded": it is what an
// empty MajorityConfig reports as committed, so that joining it with another
// configuration leaves the other one in charge.
type Index uint64

// String formats the index in decimal, except that math.MaxUint64 (the
// "unbounded" index of an empty configuration) prints as "∞".
func (i Index) String() string {
	if i != math.MaxUint64 {
		return strconv.FormatUint(uint64(i), 10)
	}
	return "∞"
}

// AckedIndexer reports, per voter, the highest log index that voter is known
// to have durably appended.
//
// found is false for a voter nothing is known about yet; such a voter counts
// against every index (as if it had acknowledged nothing), which keeps the
// committed index from running ahead of what a quorum really holds.
type AckedIndexer interface {
	AckedIndex(voterID uint64) (idx Index, found bool)
}

// VoteResult is the state of an election as far as a configuration can tell.
//
// The zero value is deliberately not a valid result, so that a forgotten
// assignment does not read as any of the three outcomes.
type VoteResult uint8

const (
	// VotePending means the outcome still depends on voters who have not
	// answered: neither the yes nor the no votes are enough on their own.
	VotePending VoteResult = 1 + iota
	// VoteLost means enough voters said no that a quorum of yes votes can
	// no longer be reached.
	VoteLost
	// VoteWon means a quorum of voters said yes.
	VoteWon
)

// String returns the constant's name, e.g. "VoteWon"; values outside the
// defined range print as "VoteResult(N)".
func (v VoteResult) String() string {
	switch v {
	case VotePending:
		return "VotePending"
	case VoteLost:
		return "VoteLost"
	case VoteWon:
		return "VoteWon"
	}
	return "VoteResult(" + strconv.FormatUint(uint64(v), 10) + ")"
}
