package rafttest

import (
	"testing"

	"github.com/cockroachdb/datadriven"
)

// cmdTickElection: tick-election ID — ticks the node ElectionTick times.
// Whether that fires an election depends on the node's randomized timeout,
// which may be up to twice as long.
func cmdTickElection(env *InteractionEnv, t *testing.T, d datadriven.TestData) error {
	idx := env.firstArgNode(t, d)
	return env.Tick(idx, env.Nodes[idx].Config.ElectionTick)
}

// cmdTickHeartbeat: tick-heartbeat ID — ticks the node HeartbeatTick
// times.
func cmdTickHeartbeat(env *InteractionEnv, t *testing.T, d datadriven.TestData) error {
	idx := env.firstArgNode(t, d)
	return env.Tick(idx, env.Nodes[idx].Config.HeartbeatTick)
}

// Tick advances the logical clock of the node at index idx by num ticks.
func (env *InteractionEnv) Tick(idx int, num int) error {
	n, err := env.node(idx)
	if err != nil {
		return err
	}
	for range num {
		n.RawNode.Tick()
	}
	return nil
}
