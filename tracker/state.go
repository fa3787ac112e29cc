package tracker

// StateType says how a leader currently replicates to one follower. The three
// states form a small machine driven by the leader (see Progress.BecomeProbe,
// Progress.BecomeReplicate and Progress.BecomeSnapshot).
type StateType uint64

// The replication states of a follower, as seen by the leader.
const (
	// StateProbe means the leader does not know where the follower's log
	// ends. It sends one append at a time and waits for the answer (or for a
	// heartbeat response) before sending the next, using rejection hints to
	// find the point where the two logs agree. A follower that stays here for
	// long is usually down or partitioned.
	StateProbe StateType = iota
	// StateReplicate is the steady state: the follower's log is known to
	// agree with the leader's up to Match, and the leader streams appends
	// optimistically, bounded only by the Inflights window.
	StateReplicate
	// StateSnapshot means the follower needs entries the leader has already
	// compacted away. Appends stop until a snapshot brings the follower up to
	// date (or the snapshot is reported as failed).
	StateSnapshot
)

// stateNames is indexed by StateType.
var stateNames = [...]string{
	StateProbe:     "StateProbe",
	StateReplicate: "StateReplicate",
	StateSnapshot:  "StateSnapshot",
}

// String returns the state's name as printed in progress lines, e.g.
// "StateReplicate". Like etcd/raft, it panics for a value outside the three
// defined states.
func (st StateType) String() string { return stateNames[st] }
