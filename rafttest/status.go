package rafttest

import (
	"fmt"
	"testing"

	"github.com/cockroachdb/datadriven"

	"github.com/raftkit/raft/tracker"
)

// cmdStatus: status ID — prints the node's progress map.
func cmdStatus(env *InteractionEnv, t *testing.T, d datadriven.TestData) error {
	return env.Status(env.firstArgNode(t, d))
}

// Status prints, into the directive's output, the replication progress held
// by the node at index idx (0-based).
//
// Only the progress map is printed, one line per peer; a node that is not
// the leader tracks no progress and prints nothing.
func (env *InteractionEnv) Status(idx int) error {
	n, err := env.node(idx)
	if err != nil {
		return err
	}
	st := n.RawNode.Status()
	progress := make(tracker.ProgressMap, len(st.Progress))
	for id, pr := range st.Progress {
		progress[id] = &pr
	}
	fmt.Fprint(env.Output, progress)
	return nil
}
