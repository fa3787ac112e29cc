package confchangescript

import (
	"testing"

	"github.com/cockroachdb/datadriven"
)

// The confchange package's testdata covers the changes in depth; this
// scenario pins down the harness itself: the last index grows with every
// directive, refused or not, and bad input is output rather than a failure.
const harnessScenario = `
simple
v1
----
voters=(1)
1: StateProbe match=0 next=1

simple
x1
----
unknown input: x1

no-such-command
----
unknown command

leave-joint
v2
----
this command takes no input

enter-joint autoleave=true
v2 l3
----
voters=(1 2)&&(1) learners=(3) autoleave
1: StateProbe match=0 next=1
2: StateProbe match=0 next=4
3: StateProbe match=0 next=4 learner
`

func TestHandlerState(t *testing.T) {
	datadriven.RunTestFromString(t, harnessScenario, NewHandler())
}

// Every handler starts from scratch: had the state been shared, the second
// run would see the first run's configuration and last index.
func TestHandlersAreIndependent(t *testing.T) {
	for range 2 {
		datadriven.RunTestFromString(t, harnessScenario, NewHandler())
	}
}
