package rafttest

import (
	"fmt"
	"testing"

	"github.com/cockroachdb/datadriven"

	"github.com/raftkit/raft"
)

// cmdReportSnapshot: report-snapshot A B status=finish|failure — tells
// leader A how sending a snapshot to B ended. This directive is raftkit's
// own (etcd's language has none): it is how a scenario shows a failed
// snapshot transfer being retried.
func cmdReportSnapshot(env *InteractionEnv, t *testing.T, d datadriven.TestData) error {
	idxs := env.bareNodeArgs(t, d)
	if len(idxs) != 2 {
		return fmt.Errorf("report-snapshot: must specify exactly two node indexes: the leader, and the snapshot's recipient")
	}
	var status string
	d.ScanArgs(t, "status", &status)
	var st raft.SnapshotStatus
	switch status {
	case "finish":
		st = raft.SnapshotFinish
	case "failure":
		st = raft.SnapshotFailure
	default:
		return fmt.Errorf("report-snapshot: unknown status %q (want finish or failure)", status)
	}
	env.Nodes[idxs[0]].ReportSnapshot(env.Nodes[idxs[1]].Config.ID, st)
	return nil
}
