package rafttest

import (
	"testing"

	"github.com/cockroachdb/datadriven"
)

// cmdStabilize: stabilize [ID...] [log-level=L] — runs the listed nodes
// (all, if none are listed) until nothing changes, then checks the group's
// safety properties. log-level applies to this directive only; other keys
// are ignored.
func cmdStabilize(env *InteractionEnv, t *testing.T, d datadriven.TestData) error {
	idxs := env.bareNodeArgs(t, d)
	for _, arg := range d.CmdArgs {
		if arg.Key != "log-level" {
			continue
		}
		for _, val := range arg.Vals {
			defer func(prev int) { env.Output.Lvl = prev }(env.Output.Lvl)
			if err := env.LogLevel(val); err != nil {
				return err
			}
		}
	}
	if err := env.Stabilize(idxs...); err != nil {
		return err
	}
	if violations := env.checkSafety(); len(violations) > 0 {
		for _, v := range violations {
			t.Errorf("%s: safety violation: %s", d.Pos, v)
		}
		t.FailNow()
	}
	return nil
}

// Stabilize keeps handling Readys, delivering messages and running storage
// thread work for the nodes at indexes idxs until a whole pass changes
// nothing.
//
// Each pass has four phases, each visiting the nodes in the given order:
// handle a Ready where there is one, deliver the messages queued for the
// node, run all of its append-thread work, run all of its apply-thread
// work. Messages to nodes outside the set stay queued. An empty idxs means
// every node.
func (env *InteractionEnv) Stabilize(idxs ...int) error {
	if len(idxs) == 0 {
		for i := range env.Nodes {
			idxs = append(idxs, i)
		}
	}
	for {
		progressed := false
		for _, phase := range []func(int) (bool, error){
			env.stabilizeReady, env.stabilizeDeliver, env.stabilizeAppend, env.stabilizeApply,
		} {
			for _, idx := range idxs {
				did, err := phase(idx)
				if err != nil {
					return err
				}
				progressed = progressed || did
			}
		}
		if !progressed {
			return nil
		}
	}
}

func (env *InteractionEnv) stabilizeReady(idx int) (bool, error) {
	if !env.Nodes[idx].HasReady() {
		return false, nil
	}
	env.Output.WriteString(nodeHeader(idx, "handling Ready"))
	var err error
	env.nested(func() { err = env.ProcessReady(idx) })
	return true, err
}

func (env *InteractionEnv) stabilizeDeliver(idx int) (bool, error) {
	id := uint64(idx + 1)
	if pending, _ := takeMsgs(env.Messages, id, anyType, false /* drop */); len(pending) == 0 {
		return false, nil
	}
	env.Output.WriteString(nodeHeader(idx, "receiving messages"))
	env.nested(func() { env.DeliverMsgs(anyType, Recipient{ID: id}) })
	return true, nil
}

func (env *InteractionEnv) stabilizeAppend(idx int) (bool, error) {
	if len(env.Nodes[idx].AppendWork) == 0 {
		return false, nil
	}
	env.Output.WriteString(nodeHeader(idx, "processing append thread"))
	for len(env.Nodes[idx].AppendWork) > 0 {
		var err error
		env.nested(func() { err = env.ProcessAppendThread(idx) })
		if err != nil {
			return true, err
		}
	}
	return true, nil
}

func (env *InteractionEnv) stabilizeApply(idx int) (bool, error) {
	if len(env.Nodes[idx].ApplyWork) == 0 {
		return false, nil
	}
	env.Output.WriteString(nodeHeader(idx, "processing apply thread"))
	for len(env.Nodes[idx].ApplyWork) > 0 {
		// A failed apply has been printed already; the group carries on,
		// as a real apply loop that logged the failure would.
		env.nested(func() { _ = env.ProcessApplyThread(idx) })
	}
	return true, nil
}
