package confchange_test

import (
	"testing"

	"github.com/cockroachdb/datadriven"

	"github.com/raftkit/raft/internal/confchangescript"
)

// TestConfChangeDataDriven runs the scenarios in testdata/, each file
// against a fresh changer; the language is described in package
// internal/confchangescript, which the compat module also uses to run
// etcd/raft's scenario files. After a deliberate change of output, run
// with -rewrite and read the diff.
func TestConfChangeDataDriven(t *testing.T) {
	datadriven.Walk(t, "testdata", confchangescript.RunFile)
}
