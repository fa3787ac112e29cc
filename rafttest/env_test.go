package rafttest

import (
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"
)

// run feeds a small script through a fresh environment and returns the
// outputs joined by "|".
func run(t *testing.T, script string) string {
	t.Helper()
	env := NewInteractionEnv(nil)
	var outs []string
	datadriven.RunTestFromString(t, script, func(t *testing.T, d *datadriven.TestData) string {
		out := env.Handle(t, *d)
		outs = append(outs, strings.TrimSuffix(out, "\n"))
		return d.Expected
	})
	return strings.Join(outs, "|")
}

func TestHandleGroupElectsAndReplicates(t *testing.T) {
	got := run(t, `
log-level none
----

add-nodes 3 voters=(1,2,3) index=2
----

campaign 2
----

stabilize
----

propose 2 payload
----

stabilize
----

log-level info
----

raft-state
----

raft-log 3
----
`)
	want := "ok|ok|ok|ok|ok|ok|ok|" +
		"1: StateFollower (Voter) Term:1 Lead:2\n2: StateLeader (Voter) Term:1 Lead:2\n3: StateFollower (Voter) Term:1 Lead:2|" +
		"1/3 EntryNormal \"\"\n1/4 EntryNormal \"payload\""
	if got != want {
		t.Fatalf("got:\n%s\nwant:\n%s", got, want)
	}
}

func TestHandleErrorsAreOutput(t *testing.T) {
	got := run(t, `
log-level none
----

frobnicate
----

add-nodes 1 index=1
----

add-nodes 1 voters=(1) index=3
----

compact 1 x
----

set-randomized-election-timeout 1 timeout=3
----
`)
	want := "ok|unknown command|index must be specified as > 1 due to bootstrap|ok|" +
		`strconv.ParseUint: parsing "x": invalid syntax|` +
		"set-randomized-election-timeout: no SetRandomizedElectionTimeout hook in InteractionOpts"
	if got != want {
		t.Fatalf("got:\n%s\nwant:\n%s", got, want)
	}
}

func TestSafetyLedgerDetectsRegressedCommit(t *testing.T) {
	env := NewInteractionEnv(nil)
	env.Output.Lvl = levelNone
	if err := env.AddNodes(1, defaultConfig(), bootSnap(5, 1)); err != nil {
		t.Fatal(err)
	}
	if v := env.checkSafety(); len(v) != 0 {
		t.Fatalf("unexpected violations %v", v)
	}
	// Pretend the checker saw a higher commit index earlier.
	env.ledger().commits[1] = 9
	v := env.checkSafety()
	if len(v) != 1 || !strings.Contains(v[0], "commit index went back from 9 to 5") {
		t.Fatalf("got %v", v)
	}
}

func TestSafetyLedgerDetectsTwoLeadersInATerm(t *testing.T) {
	env := NewInteractionEnv(nil)
	env.Output.Lvl = levelNone
	if err := env.AddNodes(1, defaultConfig(), bootSnap(5, 1)); err != nil {
		t.Fatal(err)
	}
	if err := env.Campaign(0); err != nil {
		t.Fatal(err)
	}
	if err := env.Stabilize(); err != nil {
		t.Fatal(err)
	}
	env.ledger().leaders[1] = 7 // as if node 7 had led term 1 before
	v := env.checkSafety()
	if len(v) != 1 || !strings.Contains(v[0], "term 1 has two leaders: 7 and 1") {
		t.Fatalf("got %v", v)
	}
}
