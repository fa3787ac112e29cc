package sim

import (
	"fmt"
	"time"

	"github.com/anishathalye/porcupine"
)

// linInput is one client operation as the checker sees it.
type linInput struct {
	Kind   opKind
	Key    string
	Value  string
	Expect string
}

// linOutput is its answer.
type linOutput struct {
	result
}

// linState is the value of one key (the model is partitioned by key).
type linState struct {
	Value   string
	Present bool
}

// kvModel is the sequential specification of the store, one key at a time.
var kvModel = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		var keys []string
		for _, op := range history {
			k := op.Input.(linInput).Key
			if _, ok := byKey[k]; !ok {
				keys = append(keys, k)
			}
			byKey[k] = append(byKey[k], op)
		}
		out := make([][]porcupine.Operation, 0, len(keys))
		for _, k := range keys {
			out = append(out, byKey[k])
		}
		return out
	},
	Init: func() interface{} { return linState{} },
	Step: func(state, input, output interface{}) (bool, interface{}) {
		st, in, out := state.(linState), input.(linInput), output.(linOutput)
		next := st
		switch in.Kind {
		case opPut:
			next = linState{Value: in.Value, Present: true}
		case opDelete:
			next = linState{}
		case opCAS:
			swapped := st.Present && st.Value == in.Expect
			if swapped {
				next = linState{Value: in.Value, Present: true}
			}
			if out.OK != swapped {
				return false, st
			}
		case opGet:
			return out.OK == st.Present && out.Value == st.Value, st
		}
		return true, next
	},
	DescribeOperation: func(input, output interface{}) string {
		in, out := input.(linInput), output.(linOutput)
		return fmt.Sprintf("%s(%s,%q,%q) -> %q,%v", in.Kind, in.Key, in.Value, in.Expect, out.Value, out.OK)
	},
}

// history collects client operations with their invocation and response
// steps.
type history struct {
	ops []porcupine.Operation
}

func (h *history) add(client int, in linInput, call, ret int64, out linOutput) {
	h.ops = append(h.ops, porcupine.Operation{ClientId: client, Input: in, Call: call, Output: out, Return: ret})
}

// check runs porcupine over the history. A check that times out is
// reported as such rather than as a pass.
func (h *history) check(timeout time.Duration) error {
	res := porcupine.CheckOperationsTimeout(kvModel, h.ops, timeout)
	switch res {
	case porcupine.Ok:
		return nil
	case porcupine.Illegal:
		return fmt.Errorf("history of %d operations is not linearizable", len(h.ops))
	default:
		return fmt.Errorf("linearizability check of %d operations timed out after %v", len(h.ops), timeout)
	}
}
