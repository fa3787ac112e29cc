package raft

import (
	"fmt"

	"github.com/raftkit/raft/internal/knobs"
)

// The election-timeout knobs for tests and tools outside this package
// (internal/knobs). Tests inside it call the raft methods directly.
func init() {
	knobs.Install(
		func(node any, jitter func(n int) int) { knobNode(node).useJitter(jitter) },
		func(node any, timeout int) { knobNode(node).randomizedElectionTimeout = timeout },
	)
}

// knobNode is the raft of node, which must be a *RawNode.
func knobNode(node any) *raft {
	rn, ok := node.(*RawNode)
	if !ok || rn == nil {
		panic(fmt.Sprintf("raft: knobs take a non-nil *RawNode, got %T", node))
	}
	return rn.raft
}

// useJitter makes the node draw the random part of its election timeouts
// from jitter (a value in [0, n)), starting with the current timeout.
func (r *raft) useJitter(jitter func(n int) int) {
	r.jitter = jitter
	r.drawElectionTimeout()
}
