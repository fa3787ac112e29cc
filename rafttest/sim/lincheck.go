package sim

import (
	"fmt"
	"time"

	"github.com/anishathalye/porcupine"
)

// history collects client operations with their invocation and response
// steps, for the workload's model to judge.
type history struct {
	ops []porcupine.Operation
}

func (h *history) add(client int, input interface{}, call, ret int64, output interface{}) {
	h.ops = append(h.ops, porcupine.Operation{ClientId: client, Input: input, Call: call, Output: output, Return: ret})
}

// check runs porcupine over the history. A check that times out is
// reported as such rather than as a pass.
func (h *history) check(model porcupine.Model, timeout time.Duration) error {
	res := porcupine.CheckOperationsTimeout(model, h.ops, timeout)
	switch res {
	case porcupine.Ok:
		return nil
	case porcupine.Illegal:
		return fmt.Errorf("history of %d operations is not linearizable", len(h.ops))
	default:
		return fmt.Errorf("linearizability check of %d operations timed out after %v", len(h.ops), timeout)
	}
}
