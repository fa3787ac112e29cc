// Package scenario runs datadriven scenario files and compares their
// output with the expected output in the files while ignoring log lines.
//
// It serves the compatibility checks: scenario files written for
// etcd/raft v3.6 must print the same under raftkit, except that log lines
// (whose first word is a log level) are worded raftkit's own way. The files
// are only read, never rewritten, so they may live in a read-only module
// cache.
package scenario

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"

	"github.com/raftkit/raft"
	"github.com/raftkit/raft/internal/knobs"
	"github.com/raftkit/raft/rafttest"
)

// Handler runs one directive and returns its output, as the callback of
// datadriven.RunTest does.
type Handler func(t *testing.T, d *datadriven.TestData) string

// Mismatch is a directive whose output differs from the file's, log lines
// aside.
type Mismatch struct {
	// Pos is the directive's position, "file:line".
	Pos string
	// Directive is the directive as written (command and arguments).
	Directive string
	// Line is the number (from 1) of the first differing line within the
	// filtered outputs, and Want and Got are that line on either side (""
	// where one side has ended).
	Line      int
	Want, Got string
	// WantOutput and GotOutput are the whole filtered outputs.
	WantOutput, GotOutput string
}

func (m Mismatch) String() string {
	return fmt.Sprintf("%s: %s: first difference at output line %d:\n  want: %q\n  got:  %q",
		m.Pos, m.Directive, m.Line, m.Want, m.Got)
}

// RunFile runs the scenario file at path with a fresh handler from
// newHandler and returns the directives whose output differs from the
// file's once log lines are removed from both. The file is not modified,
// even under -rewrite. Test failures raised by the handler (malformed
// directives, safety violations) fail t as usual.
func RunFile(t *testing.T, path string, newHandler func() Handler) []Mismatch {
	t.Helper()
	content, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	handle := newHandler()
	var mismatches []Mismatch
	datadriven.RunTestFromString(t, string(content), func(t *testing.T, d *datadriven.TestData) string {
		got := handle(t, d)
		if got != "" && !strings.HasSuffix(got, "\n") {
			got += "\n"
		}
		if m, ok := compare(d.Expected, got); ok {
			m.Pos = path + positionLine(d.Pos)
			m.Directive = directiveString(d)
			mismatches = append(mismatches, m)
		}
		// Echoing the file's own output keeps datadriven from judging (or,
		// under -rewrite, rewriting) anything: the comparison is ours.
		return d.Expected
	})
	return mismatches
}

// InteractionHandler returns a newHandler for RunFile that drives a fresh
// rafttest.InteractionEnv with the given options.
func InteractionHandler(opts func() *rafttest.InteractionOpts) func() Handler {
	return func() Handler {
		env := rafttest.NewInteractionEnv(opts())
		return func(t *testing.T, d *datadriven.TestData) string { return env.Handle(t, *d) }
	}
}

// RunInteractionFile runs an interaction scenario file (the language of
// rafttest) and returns its mismatches. The environment gets the
// SetRandomizedElectionTimeout hook of internal/knobs.
func RunInteractionFile(t *testing.T, path string) []Mismatch {
	t.Helper()
	return RunFile(t, path, InteractionHandler(func() *rafttest.InteractionOpts {
		return &rafttest.InteractionOpts{SetRandomizedElectionTimeout: knobs.SetRandomizedElectionTimeout[*raft.RawNode]}
	}))
}

// IsLogLine reports whether line is a log line: its first word, after any
// indentation, is a log level.
func IsLogLine(line string) bool {
	word, _, _ := strings.Cut(strings.TrimLeft(line, " \t"), " ")
	switch word {
	case "DEBUG", "INFO", "WARN", "ERROR", "FATAL", "PANIC":
		return true
	}
	return false
}

// FilterLogLines returns the lines of s that are not log lines.
func FilterLogLines(s string) []string {
	var kept []string
	for _, line := range strings.Split(strings.TrimSuffix(s, "\n"), "\n") {
		if !IsLogLine(line) {
			kept = append(kept, line)
		}
	}
	return kept
}

// compare reports the first difference between want and got, log lines
// aside. An output that consists of log lines only is equivalent to "ok",
// which is what the directive prints when the log lines are silenced.
func compare(want, got string) (Mismatch, bool) {
	w, g := normalize(FilterLogLines(want)), normalize(FilterLogLines(got))
	for i := 0; i < max(len(w), len(g)); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl || i >= len(w) || i >= len(g) {
			return Mismatch{
				Line: i + 1, Want: wl, Got: gl,
				WantOutput: strings.Join(w, "\n"), GotOutput: strings.Join(g, "\n"),
			}, true
		}
	}
	return Mismatch{}, false
}

// normalize maps an output that filtering left empty to "ok".
func normalize(lines []string) []string {
	if len(lines) == 0 || (len(lines) == 1 && lines[0] == "") {
		return []string{"ok"}
	}
	return lines
}

// positionLine extracts ":LINE" from a datadriven position such as
// "<string>:12:".
func positionLine(pos string) string {
	_, rest, ok := strings.Cut(pos, ":")
	if !ok {
		return ""
	}
	return ":" + strings.TrimSuffix(rest, ":")
}

func directiveString(d *datadriven.TestData) string {
	parts := []string{d.Cmd}
	for _, a := range d.CmdArgs {
		parts = append(parts, a.String())
	}
	return strings.Join(parts, " ")
}
