package rafttest

import (
	"errors"
	"testing"

	"github.com/cockroachdb/datadriven"
)

// cmdSetRandomizedElectionTimeout: set-randomized-election-timeout ID
// timeout=N — overrides the node's randomized election timeout until the
// node next draws a new one (on its next role change).
func cmdSetRandomizedElectionTimeout(env *InteractionEnv, t *testing.T, d datadriven.TestData) error {
	idx := env.firstArgNode(t, d)
	var timeout int
	d.ScanArgs(t, "timeout", &timeout)
	if timeout <= 0 {
		d.Fatalf(t, "set-randomized-election-timeout: timeout must be positive, got %d", timeout)
	}
	hook := env.Options.SetRandomizedElectionTimeout
	if hook == nil {
		return errors.New("set-randomized-election-timeout: no SetRandomizedElectionTimeout hook in InteractionOpts")
	}
	hook(env.Nodes[idx].RawNode, timeout)
	return nil
}
