package scenarios

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/raftkit/raft/internal/scenario"
)

// TestComparisonIgnoresOnlyLogLines guards the comparison the scenario
// tests rely on, using variants of one of etcd/raft's interaction files held
// in a temporary directory: rewording every log line must go unnoticed,
// while changing one other line must be reported, at that line, once.
func TestComparisonIgnoresOnlyLogLines(t *testing.T) {
	const file = "testdata/campaign.txt"
	orig, err := os.ReadFile(filepath.Join(etcdDir(t), filepath.FromSlash(file)))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(orig), "\n")

	t.Run("log lines reworded", func(t *testing.T) {
		variant := append([]string(nil), lines...)
		reworded := 0
		for i, line := range variant {
			if scenario.IsLogLine(line) {
				indent := line[:len(line)-len(strings.TrimLeft(line, " "))]
				level, _, _ := strings.Cut(strings.TrimLeft(line, " "), " ")
				variant[i] = indent + level + " worded some other way"
				reworded++
			}
		}
		if reworded == 0 {
			t.Fatalf("%s has no log lines; pick another file for this check", file)
		}
		if ms := runVariant(t, variant); len(ms) != 0 {
			t.Errorf("rewording %d log lines gave %d mismatches, want none; first:\n%s", reworded, len(ms), ms[0])
		}
	})

	t.Run("output line changed", func(t *testing.T) {
		variant := append([]string(nil), lines...)
		changed := -1
		for i, line := range variant {
			if strings.HasPrefix(strings.TrimLeft(line, " "), "HardState ") {
				variant[i] += " (changed)"
				changed = i
				break
			}
		}
		if changed < 0 {
			t.Fatalf("%s has no HardState line; pick another file for this check", file)
		}
		ms := runVariant(t, variant)
		if len(ms) != 1 || ms[0].Want != variant[changed] || ms[0].Got != lines[changed] {
			t.Errorf("changing line %d gave mismatches %v; want exactly one, at that line", changed+1, ms)
		}
	})
}

// runVariant runs the scenario text given as lines from a temporary file.
func runVariant(t *testing.T, lines []string) []scenario.Mismatch {
	t.Helper()
	path := filepath.Join(t.TempDir(), "variant.txt")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	return scenario.RunFile(t, path, newInteractionHandler)
}
