package rafttest

import (
	"errors"
	"fmt"
	"strconv"
	"testing"

	"github.com/cockroachdb/datadriven"

	pb "github.com/raftkit/raft/raftpb"
)

// cmdProposeConfChange: propose-conf-change ID [v1=bool]
// [transition=auto|implicit|explicit], with the changes as tokens on the
// input line (vN add voter, lN add learner, rN remove, uN update). Without
// v1=true the changes go out as one ConfChangeV2, so an empty input proposes
// leaving a joint configuration.
func cmdProposeConfChange(env *InteractionEnv, t *testing.T, d datadriven.TestData) error {
	idx := env.firstArgNode(t, d)
	v1 := false
	transition := pb.ConfChangeTransitionAuto
	for _, arg := range d.CmdArgs[1:] {
		for _, val := range arg.Vals {
			switch arg.Key {
			case "v1":
				b, err := strconv.ParseBool(val)
				if err != nil {
					return err
				}
				v1 = b
			case "transition":
				tr, err := parseTransition(val)
				if err != nil {
					return err
				}
				transition = tr
			default:
				return fmt.Errorf("unknown command %s", arg.Key)
			}
		}
	}
	changes, err := pb.ConfChangesFromString(d.Input)
	if err != nil {
		return err
	}
	if !v1 {
		return env.ProposeConfChange(idx, pb.ConfChangeV2{Transition: transition, Changes: changes})
	}
	if len(changes) != 1 || transition != pb.ConfChangeTransitionAuto {
		return errV1Shape
	}
	return env.ProposeConfChange(idx, pb.ConfChange{Type: changes[0].Type, NodeID: changes[0].NodeID})
}

// errV1Shape: a v1 ConfChange holds exactly one change and has no notion of
// joint configurations.
var errV1Shape = errors.New("v1 conf change can only have one operation and no transition")

func parseTransition(s string) (pb.ConfChangeTransition, error) {
	switch s {
	case "auto":
		return pb.ConfChangeTransitionAuto, nil
	case "implicit":
		return pb.ConfChangeTransitionJointImplicit, nil
	case "explicit":
		return pb.ConfChangeTransitionJointExplicit, nil
	}
	return 0, fmt.Errorf("unknown transition %s", s)
}

// ProposeConfChange hands configuration change c to the node at index idx
// as a proposal.
func (env *InteractionEnv) ProposeConfChange(idx int, c pb.ConfChangeI) error {
	n, err := env.node(idx)
	if err != nil {
		return err
	}
	return n.RawNode.ProposeConfChange(c)
}
