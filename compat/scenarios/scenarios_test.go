package scenarios

import (
	"fmt"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"

	"github.com/raftkit/raft"
	"github.com/raftkit/raft/internal/confchangescript"
	"github.com/raftkit/raft/internal/knobs"
	"github.com/raftkit/raft/internal/quorumscript"
	"github.com/raftkit/raft/internal/scenario"
	"github.com/raftkit/raft/rafttest"
)

// TestEtcdQuorumScenarios runs etcd/raft's quorum/testdata through the
// harness of raftkit's quorum tests.
func TestEtcdQuorumScenarios(t *testing.T) {
	runEtcdScenarios(t, "quorum/testdata", func() scenario.Handler { return quorumscript.Handle })
}

// TestEtcdConfChangeScenarios runs etcd/raft's confchange/testdata through
// the harness of raftkit's confchange tests, each file with a fresh changer.
func TestEtcdConfChangeScenarios(t *testing.T) {
	runEtcdScenarios(t, "confchange/testdata", func() scenario.Handler { return confchangescript.NewHandler() })
}

// TestEtcdInteractionScenarios runs etcd/raft's root testdata (whole
// clusters driven through rafttest's InteractionEnv), each file in a fresh
// environment.
func TestEtcdInteractionScenarios(t *testing.T) {
	runEtcdScenarios(t, "testdata", newInteractionHandler)
}

// newInteractionHandler sets the environment up as raftkit's own
// TestInteraction does, with the same election-timeout hook.
func newInteractionHandler() scenario.Handler {
	return scenario.InteractionHandler(func() *rafttest.InteractionOpts {
		return &rafttest.InteractionOpts{SetRandomizedElectionTimeout: knobs.SetRandomizedElectionTimeout[*raft.RawNode]}
	})()
}

// maxReported bounds how many differing directives a failing file lists.
const maxReported = 3

// runEtcdScenarios runs every file under sub (a directory of etcd/raft's
// module, slash-separated) with a fresh handler per file, and fails each
// file whose output differs from etcd/raft's, log lines aside, naming its
// first differing lines. A handler panic fails only its own file.
func runEtcdScenarios(t *testing.T, sub string, newHandler func() scenario.Handler) {
	root := etcdDir(t)
	dir := filepath.Join(root, filepath.FromSlash(sub))
	files := 0
	datadriven.Walk(t, dir, func(t *testing.T, path string) {
		files++
		name, err := filepath.Rel(root, path)
		if err != nil {
			name = path
		}
		name = filepath.ToSlash(name)
		mismatches := scenario.RunFile(t, path, func() scenario.Handler {
			return recoverPanics(name, newHandler())
		})
		if len(mismatches) > 0 {
			t.Error(describeMismatches(name, path, mismatches))
		}
	})
	if files == 0 {
		t.Fatalf("no scenario files under %s", dir)
	}
}

// recoverPanics turns a panic of h into a failure of the current file, so
// that the files after it still run.
func recoverPanics(name string, h scenario.Handler) scenario.Handler {
	return func(t *testing.T, d *datadriven.TestData) string {
		defer func() {
			if r := recover(); r != nil {
				t.Fatalf("%s: %s: panic: %v\n%s", name, d.Pos, r, debug.Stack())
			}
		}()
		return h(t, d)
	}
}

// describeMismatches reports a file's differing directives: the first few
// with their first differing line, and, under -v, the first one's whole
// outputs.
func describeMismatches(name, path string, ms []scenario.Mismatch) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d directive(s) print differently from etcd/raft v3.6.0 (log lines aside):\n", name, len(ms))
	for i, m := range ms {
		if i == maxReported {
			fmt.Fprintf(&b, "... and %d more\n", len(ms)-maxReported)
			break
		}
		m.Pos = name + strings.TrimPrefix(m.Pos, path)
		b.WriteString(m.String())
		b.WriteString("\n")
	}
	if testing.Verbose() {
		fmt.Fprintf(&b, "first difference in full:\n--- want\n%s\n--- got\n%s\n", ms[0].WantOutput, ms[0].GotOutput)
	}
	return b.String()
}
