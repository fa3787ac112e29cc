package scenario

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/raftkit/raft"
	pb "github.com/raftkit/raft/raftpb"
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

// The reflective hook must really reach the timeout: a lone voter whose
// timeout is pinned to 5 ticks stays a follower for 4 ticks and campaigns
// on the 5th.
func TestSetRandomizedElectionTimeout(t *testing.T) {
	s := raft.NewMemoryStorage()
	var snap pb.Snapshot
	snap.Metadata.Index, snap.Metadata.Term = 2, 1
	snap.Metadata.ConfState.Voters = []uint64{1}
	if err := s.ApplySnapshot(snap); err != nil {
		t.Fatal(err)
	}
	rn, err := raft.NewRawNode(&raft.Config{
		ID: 1, ElectionTick: 3, HeartbeatTick: 1, Storage: s, MaxSizePerMsg: 1 << 20,
		MaxInflightMsgs: 16, Applied: 2, Logger: discard{},
	})
	if err != nil {
		t.Fatal(err)
	}
	SetRandomizedElectionTimeout(rn, 5)
	for i := 1; i <= 4; i++ {
		rn.Tick()
		if st := rn.BasicStatus().RaftState; st != raft.StateFollower {
			t.Fatalf("after %d ticks: %s, want StateFollower", i, st)
		}
	}
	rn.Tick()
	if st := rn.BasicStatus().RaftState; st == raft.StateFollower {
		t.Fatal("after 5 ticks the node must have campaigned")
	}
}

type discard struct{}

func (discard) Debug(...interface{})              {}
func (discard) Debugf(string, ...interface{})     {}
func (discard) Error(...interface{})              {}
func (discard) Errorf(string, ...interface{})     {}
func (discard) Info(...interface{})               {}
func (discard) Infof(string, ...interface{})      {}
func (discard) Warning(...interface{})            {}
func (discard) Warningf(string, ...interface{})   {}
func (discard) Fatal(v ...interface{})            { panic(v) }
func (discard) Fatalf(f string, v ...interface{}) { panic(f) }
func (discard) Panic(v ...interface{})            { panic(v) }
func (discard) Panicf(f string, v ...interface{}) { panic(f) }
