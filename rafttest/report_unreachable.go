package rafttest

import (
	"errors"
	"testing"

	"github.com/cockroachdb/datadriven"
)

// cmdReportUnreachable: report-unreachable A B — tells node A that the
// last message it sent to B did not arrive.
func cmdReportUnreachable(env *InteractionEnv, t *testing.T, d datadriven.TestData) error {
	idxs := env.bareNodeArgs(t, d)
	if len(idxs) != 2 {
		return errors.New("must specify exactly two node indexes: node on which to report, and reported node")
	}
	env.Nodes[idxs[0]].ReportUnreachable(env.Nodes[idxs[1]].Config.ID)
	return nil
}
