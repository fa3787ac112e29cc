package rafttest

import (
	"fmt"
	"testing"

	"github.com/cockroachdb/datadriven"
)

// cmdRaftState: raft-state — one line per node, each from that node's
// own point of view: "ID: StateX (Voter|Non-Voter) Term:T Lead:L".
func cmdRaftState(env *InteractionEnv, _ *testing.T, _ datadriven.TestData) error {
	for i := range env.Nodes {
		st := env.Nodes[i].Status()
		role := "(Non-Voter)"
		if _, ok := st.Config.Voters.IDs()[st.ID]; ok {
			role = "(Voter)"
		}
		fmt.Fprintf(env.Output, "%d: %s %s Term:%d Lead:%d\n", st.ID, st.RaftState, role, st.Term, st.Lead)
	}
	return nil
}
