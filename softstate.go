package raft

// SoftState is the volatile part of a node's state: useful for logging and
// monitoring, never needed for correctness, never persisted.
type SoftState struct {
	Lead      uint64 // the leader this node knows of, or None
	RaftState StateType
}

func (a *SoftState) equal(b *SoftState) bool {
	return a.Lead == b.Lead && a.RaftState == b.RaftState
}
