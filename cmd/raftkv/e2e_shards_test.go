package main

import (
	"context"
	"errors"
	"net/http"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/raftkit/raft/kvservice"
)

// TestClusterShards runs "raftkv cluster --shards 4": /v1/status shows
// every shard with a leader, the leaders end spread (shard i on member
// i mod 3 + 1), membership changes answer 501, and the same directory
// refuses another --shards on resume.
func TestClusterShards(t *testing.T) {
	dir := t.TempDir()
	args := []string{"cluster", "--dir", dir, "--http-port", "0", "--peer-port", "0", "--progress", "1h", "--shards", "4"}
	r := startCLI(t, nil, "leader elected", args...)
	r.waitSeen(t, 60*time.Second)
	if !strings.Contains(r.output(), "with 4 shards") {
		t.Fatalf("no shard count in the output:\n%s", r.output())
	}
	l, _, err := loadOrCreateLayout(dir, 0, 0, 0, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := newProcCluster(testBin, dir, l)
	if err := c.client.Put(context.Background(), c.addr(2), "hello", "world"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "leaders spread over the members", func() bool {
		st, err := c.client.Status(context.Background(), c.addr(1))
		if err != nil || len(st.Shards) != 4 {
			return false
		}
		for i, sh := range st.Shards {
			if sh.Leader != uint64(i%3)+1 {
				return false
			}
		}
		return true
	})
	err = c.client.AddMember(context.Background(), c.addr(1), kvservice.Member{ID: 4, PeerAddr: "127.0.0.1:1", HTTPAddr: "127.0.0.1:2"})
	var e *kvservice.APIError
	if !errors.As(err, &e) || e.Code != http.StatusNotImplemented {
		t.Fatalf("adding a member to a sharded cluster: %v, want HTTP 501", err)
	}
	if err := r.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := r.waitExit(t, 30*time.Second); err != nil {
		t.Fatalf("cluster after SIGTERM: %v\n%s", err, r.output())
	}
	args[len(args)-1] = "8"
	again := startCLI(t, nil, "", args...)
	if err := again.waitExit(t, 30*time.Second); err == nil || !strings.Contains(again.output(), "runs 4 shards") {
		t.Fatalf("resuming a 4-shard cluster with --shards 8: %v\n%s", err, again.output())
	}
}

// TestLoadShards: "raftkv load --shards 4" runs on a sharded cluster and
// ends with its LOAD line.
func TestLoadShards(t *testing.T) {
	r := startCLI(t, nil, "", "load", "--shards", "4", "--duration", "1s", "--clients", "8")
	if err := r.waitExit(t, 90*time.Second); err != nil {
		t.Fatalf("load --shards 4: %v\n%s", err, r.output())
	}
	line := regexp.MustCompile(`(?m)^LOAD: shards=4 clients=8 writes/s=[1-9]\d* p50=\S+ p99=\S+ cpu_ms_per_1k=\S+ fsyncs_per_write=\S+$`)
	if !line.MatchString(r.output()) {
		t.Fatalf("no LOAD line with writes:\n%s", r.output())
	}
	if !regexp.MustCompile(`leader changes seen by the members during the run: \d+ \(terms begun: \d+\)`).MatchString(r.output()) {
		t.Fatalf("no count of the terms begun during the run:\n%s", r.output())
	}
	cost := regexp.MustCompile(`per write: [1-9]\d* WAL bytes, \S+ messages; [1-9]\d* host rounds \(all members\), \S+ shards per round`)
	if !cost.MatchString(r.output()) {
		t.Fatalf("no cost line with host rounds:\n%s", r.output())
	}
}

// TestDemoShards: "raftkv demo --shards 4" kills the member leading shard
// 0 (and so a third of the shards' leaders), writes through the others,
// restarts it, and finds every key on it: every shard recovered.
func TestDemoShards(t *testing.T) {
	r := startCLI(t, nil, "", "demo", "--shards", "4", "--dir", t.TempDir(), "--http-port", "0", "--peer-port", "0")
	if err := r.waitExit(t, 90*time.Second); err != nil || !strings.Contains(r.output(), "nothing acknowledged was lost") {
		t.Fatalf("demo --shards 4: %v\n%s", err, r.output())
	}
}
