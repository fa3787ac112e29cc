package rafttest

import (
	"testing"

	"github.com/cockroachdb/datadriven"
)

// cmdForgetLeader: forget-leader ID.
func cmdForgetLeader(env *InteractionEnv, t *testing.T, d datadriven.TestData) error {
	env.ForgetLeader(env.firstArgNode(t, d))
	return nil
}

// ForgetLeader asks the node at index idx to drop its current leader.
// Refusals (the node is not a follower, or its leader lease is still in
// force) surface only as log lines, as they would in production.
func (env *InteractionEnv) ForgetLeader(idx int) {
	_ = env.Nodes[idx].ForgetLeader()
}
