package confchange

import (
	"errors"
	"fmt"
	"testing"

	"github.com/cockroachdb/datadriven"

	pb "github.com/raftkit/raft/raftpb"
	"github.com/raftkit/raft/tracker"
)

// TestConfChangeDataDriven runs the scenarios in testdata/. Each file starts
// from an empty configuration whose tracker allows 10 inflight messages; the
// changer's LastIndex starts at 0 and grows by one per directive (whatever
// its outcome), which shows in the Next of the progress each directive
// creates.
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
// and leaves the configuration alone.
func TestConfChangeDataDriven(t *testing.T) {
	datadriven.Walk(t, "testdata", func(t *testing.T, path string) {
		runConfChangeFile(t, path)
	})
}

// runConfChangeFile runs one scenario file against a fresh changer.
func runConfChangeFile(t *testing.T, path string) {
	chg := Changer{Tracker: tracker.MakeProgressTracker(10, 0)}
	datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
		defer func() { chg.LastIndex++ }()
		return handleDirective(t, &chg, d)
	})
}

// handleDirective carries out one directive against chg and returns its
// output. Bad change tokens and unknown commands are output, not failures,
// so that scenarios can show them.
func handleDirective(t *testing.T, chg *Changer, d *datadriven.TestData) string {
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
