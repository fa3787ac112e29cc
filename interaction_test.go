package raft_test

import (
	"testing"

	"github.com/cockroachdb/datadriven"

	"github.com/raftkit/raft"
	"github.com/raftkit/raft/internal/knobs"
	"github.com/raftkit/raft/rafttest"
)

// TestInteraction runs every scenario under testdata/, each file in a fresh
// environment. After a change in behaviour, run
//
//	go test . -run TestInteraction -rewrite
//
// and read the diff line by line: a rewritten expectation that is wrong
// blesses a bug.
func TestInteraction(t *testing.T) {
	datadriven.Walk(t, "testdata", runScenario)
}

// runScenario runs one scenario file in an environment of its own.
func runScenario(t *testing.T, path string) {
	opts := rafttest.InteractionOpts{SetRandomizedElectionTimeout: knobs.SetRandomizedElectionTimeout[*raft.RawNode]}
	env := rafttest.NewInteractionEnv(&opts)
	handle := func(t *testing.T, d *datadriven.TestData) string { return env.Handle(t, *d) }
	datadriven.RunTest(t, path, handle)
}
