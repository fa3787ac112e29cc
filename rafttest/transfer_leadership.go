package rafttest

import (
	"testing"

	"github.com/cockroachdb/datadriven"
)

// cmdTransferLeadership: transfer-leadership from=X to=Y — asks node X
// to hand its leadership to node Y. Both must name existing nodes.
func cmdTransferLeadership(env *InteractionEnv, t *testing.T, d datadriven.TestData) error {
	var from, to uint64
	d.ScanArgs(t, "from", &from)
	d.ScanArgs(t, "to", &to)
	for _, id := range []uint64{from, to} {
		if id == 0 || id > uint64(len(env.Nodes)) {
			d.Fatalf(t, "transfer-leadership: expected valid \"from\" and \"to\" arguments, got from=%d to=%d", from, to)
		}
	}
	env.Nodes[from-1].TransferLeader(to)
	return nil
}
