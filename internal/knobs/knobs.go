// Package knobs is the one way raftkit's tests and tools outside package
// raft (rafttest/sim, wal's cluster tests, the compat module's scenarios,
// raft's own external tests) control the randomness of a node's election
// timeouts: a seeded source for the random part, so that a run repeats
// exactly, and an override of the timeout drawn, so that a scenario can
// pin down which node times out first.
//
// It adds nothing to raft's public API: only packages of this module can
// import it, and package raft installs the implementations when it is
// initialized. The functions take the node as a type parameter N, which is
// always *raft.RawNode: this package cannot name that type (package raft
// imports it), so raft checks it when called and panics on anything else.
package knobs

// The implementations, installed by package raft.
var (
	setJitter  func(node any, jitter func(n int) int)
	setTimeout func(node any, timeout int)
)

// Install is called once, by package raft's init, with its
// implementations of SetElectionJitter and SetRandomizedElectionTimeout.
func Install(jitter func(node any, jitter func(n int) int), timeout func(node any, timeout int)) {
	if setJitter != nil || setTimeout != nil {
		panic("knobs: installed twice")
	}
	setJitter, setTimeout = jitter, timeout
}

// SetElectionJitter makes node (a *raft.RawNode) draw the random part of
// every election timeout from jitter, which returns a value in [0, n), and
// draws the current timeout from it again, as if the node had been created
// with it. Call it right after creating the node.
func SetElectionJitter[N any](node N, jitter func(n int) int) {
	setJitter(node, jitter)
}

// SetRandomizedElectionTimeout overrides the election timeout (in ticks)
// that node (a *raft.RawNode) drew at its last reset, until it draws the
// next one (on its next role or term change). As a func(*raft.RawNode, int),
// SetRandomizedElectionTimeout[*raft.RawNode] is the hook that
// rafttest.InteractionOpts.SetRandomizedElectionTimeout wants.
func SetRandomizedElectionTimeout[N any](node N, timeout int) {
	setTimeout(node, timeout)
}
