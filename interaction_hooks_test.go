package raft

// SetRandomizedElectionTimeoutForTest overrides the election timeout rn's
// raft drew at its last role change, so that scenarios can pin down which
// node times out first. It exists only in tests; rafttest reaches it
// through InteractionOpts.SetRandomizedElectionTimeout.
func SetRandomizedElectionTimeoutForTest(rn *RawNode, timeout int) {
	rn.raft.randomizedElectionTimeout = timeout
}
