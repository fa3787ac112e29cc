package rafttest

import (
	"bytes"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"

	pb "github.com/raftkit/raft/raftpb"
)

// TestRestart crashes nodes of a working group, one with a compacted log
// and one with a lowered commit index, and checks that they come back from
// what they persisted and catch up.
func TestRestart(t *testing.T) {
	env := NewInteractionEnv(nil)
	var outs []string
	datadriven.RunTestFromString(t, restartScript, func(t *testing.T, d *datadriven.TestData) string {
		outs = append(outs, strings.TrimSuffix(env.Handle(t, *d), "\n"))
		return d.Expected
	})
	checkRestartOutputs(t, outs)
	checkRestartCaughtUp(t, env)
}

// restartScript is TestRestart's scenario: a group commits a and b, node 2
// compacts and node 1 proposes c, then 2 restarts and 3 restarts with
// commit indexes out of range and in range, and the group stabilizes.
const restartScript = `
log-level none
----

add-nodes 3 voters=(1,2,3) index=2
----

campaign 1
----

stabilize
----

propose 1 a
----

propose 1 b
----

stabilize
----

compact 2 4
----

propose 1 c
----

process-ready 1
----

restart 2
----

restart 3 commit=1
----

restart 3 commit=6
----

restart 3 commit=3
----

log-level info
----

raft-log 2
----

status 3
----

log-level none
----

tick-heartbeat 1
----

stabilize
----
`

// checkRestartOutputs checks what restartScript's directives printed: the
// out-of-range commit indexes are refused, and node 2's log starts after its
// compaction point.
func checkRestartOutputs(t *testing.T, outs []string) {
	t.Helper()
	want := []string{
		"ok", "ok", "ok", "ok", "ok", "ok", "ok", "ok", "ok", "ok", "ok",
		"commit=1 is outside [2, 5]: below the snapshot or above the durable commit index",
		"commit=6 is outside [2, 5]: below the snapshot or above the durable commit index",
		"ok", "ok",
		"1/5 EntryNormal \"b\"", // 2's log starts after its compaction point
	}
	if len(outs) < len(want) {
		t.Fatalf("outputs %q", outs)
	}
	for i, w := range want {
		if outs[i] != w {
			t.Errorf("directive %d printed %q, want %q", i, outs[i], w)
		}
	}
}

// checkRestartCaughtUp checks that the restarted group has no messages left
// and that every node applied what the leader applied.
func checkRestartCaughtUp(t *testing.T, env *InteractionEnv) {
	t.Helper()
	if len(env.Messages) != 0 {
		t.Errorf("messages left after stabilize: %d", len(env.Messages))
	}
	leader := latestState(env, 0)
	if string(leader.Data) != "abc" {
		t.Errorf("leader applied %q, want \"abc\"", leader.Data)
	}
	for idx := 1; idx < 3; idx++ {
		got := latestState(env, idx)
		if got.Metadata.Index != leader.Metadata.Index || !bytes.Equal(got.Data, leader.Data) {
			t.Errorf("node %d applied %d %q, leader %d %q", idx+1, got.Metadata.Index, got.Data,
				leader.Metadata.Index, leader.Data)
		}
	}
}

// TestRestartDropsMessagesAndStorageWork: a crash loses the messages in
// flight to the node and its unperformed storage work (asynchronous
// writes), and what the lost work would have written is not in its log.
func TestRestartDropsMessagesAndStorageWork(t *testing.T) {
	got := run(t, `
log-level none
----

add-nodes 2 voters=(1,2) index=2 async-storage-writes=true
----

campaign 1
----

stabilize
----

propose 1 a
----

process-ready 1
----

deliver-msgs 2
----

process-ready 2
----

propose 1 b
----

process-ready 1
----

restart 2
----

log-level info
----

raft-log 2
----

process-append-thread 2
----

deliver-msgs 2
----
`)
	want := "ok|ok|ok|ok|ok|ok|ok|ok|ok|ok|ok|ok|1/3 EntryNormal \"\"|no append work to perform|no messages"
	if got != want {
		t.Fatalf("got:\n%s\nwant:\n%s", got, want)
	}
}

// latestState is the application state of the node at index idx.
func latestState(env *InteractionEnv, idx int) pb.Snapshot {
	h := env.Nodes[idx].History
	return h[len(h)-1]
}
