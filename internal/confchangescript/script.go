// Package confchangescript runs the confchange package's datadriven
// scenario language, so that the package's own tests and the compat module
// (which runs etcd/raft v3.6's scenario files) drive the same code.
//
// Each file starts from an empty configuration whose tracker allows 10
// inflight messages; the changer's LastIndex starts at 0 and grows by one
// per directive (whatever its outcome), which shows in the Next of the
// progress each directive creates.
//
// Directives:
//
//	simple               apply the changes on the input line in one step
//	enter-joint [autoleave=bool]
//	                     enter a joint configuration with those changes
//	leave-joint          leave the joint configuration (takes no input)
//
// Changes are tokens separated by single spaces: vN adds or promotes voter
// N, lN adds or demotes learner N, rN removes N, uN updates N. A successful
// directive prints the new configuration and then the progress map, and the
// result becomes the current configuration; a refused one prints the error
// and leaves the configuration alone. Bad change tokens and unknown
// commands are output, not failures, so that scenarios can show them.
package confchangescript

import (
	"errors"
	"fmt"
	"testing"

	"github.com/cockroachdb/datadriven"

	"github.com/raftkit/raft/confchange"
	pb "github.com/raftkit/raft/raftpb"
	"github.com/raftkit/raft/tracker"
)

// maxInflight is the tracker's flow-control limit in every scenario file.
const maxInflight = 10

// RunFile runs the scenario file at path against a fresh configuration and
// compares the output strictly, as datadriven.RunTest does (so -rewrite
// rewrites the file).
func RunFile(t *testing.T, path string) {
	t.Helper()
	datadriven.RunTest(t, path, NewHandler())
}

// NewHandler returns a directive handler with the state of a file that has
// just started. Every directive it runs builds on the ones before it, so a
// handler serves one file, its directives in order.
func NewHandler() func(t *testing.T, d *datadriven.TestData) string {
	chg := &confchange.Changer{Tracker: tracker.MakeProgressTracker(maxInflight, 0)}
	return func(t *testing.T, d *datadriven.TestData) string {
		// The index advances even for refused directives, so that Next
		// values in a file do not depend on which earlier steps failed.
		defer func() { chg.LastIndex++ }()
		return handle(t, chg, d)
	}
}

// handle carries out one directive against chg and returns its output.
func handle(t *testing.T, chg *confchange.Changer, d *datadriven.TestData) string {
	ccs, err := pb.ConfChangesFromString(d.Input)
	if err != nil {
		return err.Error()
	}
	var (
		cfg tracker.Config
		prs tracker.ProgressMap
	)
	switch d.Cmd {
	case "simple":
		cfg, prs, err = chg.Simple(ccs...)
	case "enter-joint":
		autoLeave := false
		if len(d.CmdArgs) > 0 {
			d.ScanArgs(t, "autoleave", &autoLeave)
		}
		cfg, prs, err = chg.EnterJoint(autoLeave, ccs...)
	case "leave-joint":
		if len(ccs) > 0 {
			err = errors.New("this command takes no input")
		} else {
			cfg, prs, err = chg.LeaveJoint()
		}
	default:
		return "unknown command"
	}
	if err != nil {
		return err.Error() + "\n"
	}
	chg.Tracker.Config, chg.Tracker.Progress = cfg, prs
	return fmt.Sprintf("%s\n%s", cfg, prs)
}
