package scenario

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestIsLogLine(t *testing.T) {
	for line, want := range map[string]bool{
		"INFO 1 became leader":     true,
		"  DEBUG nested":           true,
		"PANIC x":                  true,
		"INFORMATION is not level": false,
		"1->2 MsgApp Term:1":       false,
		"> 1 handling Ready":       false,
		"":                         false,
		"WARN":                     true,
	} {
		if got := IsLogLine(line); got != want {
			t.Errorf("IsLogLine(%q) = %t, want %t", line, got, want)
		}
	}
}

func TestCompareIgnoresLogLines(t *testing.T) {
	if _, ok := compare("INFO ours\n> 1 handling Ready\n", "> 1 handling Ready\nWARN theirs\n"); ok {
		t.Fatal("outputs differing only in log lines must compare equal")
	}
	if _, ok := compare("INFO only logs\n", "ok\n"); ok {
		t.Fatal("an all-log output must equal ok")
	}
	m, ok := compare("a\nb\nc\n", "a\nB\n")
	if !ok || m.Line != 2 || m.Want != "b" || m.Got != "B" {
		t.Fatalf("got %+v, %t", m, ok)
	}
	m, ok = compare("a\n", "a\nextra\n")
	if !ok || m.Line != 2 || m.Want != "" || m.Got != "extra" {
		t.Fatalf("got %+v, %t", m, ok)
	}
}

func TestRunInteractionFileReportsMismatches(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.txt")
	script := `add-nodes 1 voters=(1) index=2
----
INFO worded differently than ours

raft-state
----
1: StateLeader (Voter) Term:0 Lead:0
`
	if err := os.WriteFile(path, []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	ms := RunInteractionFile(t, path)
	if len(ms) != 1 {
		t.Fatalf("want one mismatch, got %v", ms)
	}
	m := ms[0]
	if m.Pos != path+":5" || m.Directive != "raft-state" || m.Got != "1: StateFollower (Voter) Term:0 Lead:0" {
		t.Fatalf("unexpected mismatch %+v", m)
	}
	if !strings.Contains(m.String(), "first difference at output line 1") {
		t.Fatalf("unexpected rendering %q", m.String())
	}
}
