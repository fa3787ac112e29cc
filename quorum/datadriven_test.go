package quorum_test

import (
	"testing"

	"github.com/cockroachdb/datadriven"

	"github.com/raftkit/raft/internal/quorumscript"
)

// TestDataDriven runs the scenarios in testdata/; the language is described
// in package internal/quorumscript, which the compat module also uses to run
// etcd/raft's scenario files. After a deliberate change of output, run
// with -rewrite and read the diff.
func TestDataDriven(t *testing.T) {
	datadriven.Walk(t, "testdata", quorumscript.RunFile)
}
