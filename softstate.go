package raft

// SoftState is the volatile part of a node's state: useful for logging and
// monitoring, never needed for correctness, never persisted.
type SoftState struct {
	Lead      uint64 // the leader this node knows of, or None
	RaftState StateType
}

// sameAs reports whether a and b name the same leader and role.
func (a *SoftState) sameAs(b *SoftState) bool {
	return a.Lead == b.Lead && a.RaftState == b.RaftState
}
