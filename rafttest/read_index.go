package rafttest

import (
	"testing"

	"github.com/cockroachdb/datadriven"
)

// cmdReadIndex: read-index ID CTX — requests a linearizable read on the
// node, tagged with CTX. This directive is raftkit's own; etcd's language
// has none. The answer arrives later as a ReadState in one of the node's
// Readys (printed with them), or never, if the request is dropped, which
// only the node's log says.
func cmdReadIndex(env *InteractionEnv, t *testing.T, d datadriven.TestData) error {
	idx := env.firstArgNode(t, d)
	if len(d.CmdArgs) != 2 || len(d.CmdArgs[1].Vals) > 0 {
		d.Fatalf(t, "read-index: expected a node ID and one context token: %+v", d.CmdArgs)
	}
	env.Nodes[idx].ReadIndex([]byte(d.CmdArgs[1].Key))
	return nil
}
