package rafttest

import (
	"testing"

	"github.com/cockroachdb/datadriven"
)

// cmdPropose: propose ID TOKEN — the token, taken literally, is the
// entry's payload.
func cmdPropose(env *InteractionEnv, t *testing.T, d datadriven.TestData) error {
	idx := env.firstArgNode(t, d)
	if len(d.CmdArgs) != 2 || len(d.CmdArgs[1].Vals) > 0 {
		d.Fatalf(t, "expected exactly one key with no vals: %+v", d.CmdArgs[1:])
	}
	return env.Propose(idx, []byte(d.CmdArgs[1].Key))
}

// Propose a regular entry.
func (env *InteractionEnv) Propose(idx int, data []byte) error {
	n, err := env.node(idx)
	if err != nil {
		return err
	}
	return n.Propose(data)
}
