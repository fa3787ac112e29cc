package kvservice

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
)

func TestStateMachineCAS(t *testing.T) {
	st, err := openStateStore(t.TempDir(), true, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer st.close()
	s := shard{st: st, group: defaultGroup}.newApplyBatch(0)
	defer s.close()
	one := "1"
	steps := []struct {
		c    command
		want Result
	}{
		{command{Op: opCAS, Key: "k", Value: "1"}, Result{Succeeded: true}},          // absent: set
		{command{Op: opCAS, Key: "k", Value: "2"}, Result{Existed: true, Prev: "1"}}, // present: refused
		{command{Op: opCAS, Key: "k", Value: "2", Expect: &one}, Result{Existed: true, Prev: "1", Succeeded: true}},
		{command{Op: opCAS, Key: "k", Value: "3", Expect: &one}, Result{Existed: true, Prev: "2"}},
		{command{Op: opDelete, Key: "k"}, Result{Existed: true, Prev: "2", Succeeded: true}},
		{command{Op: opCAS, Key: "k", Value: "4", Expect: &one}, Result{}},
		{command{Op: "frobnicate", Key: "k"}, Result{}},
	}
	for i, st := range steps {
		if got, err := s.apply(st.c); err != nil || got != st.want {
			t.Fatalf("step %d (%+v): got %+v, want %+v", i, st.c, got, st.want)
		}
	}
	if s.keys != 0 {
		t.Fatalf("key count %d after the last key was deleted", s.keys)
	}
	if _, err := unmarshalKVState([]byte("{")); err == nil {
		t.Fatal("garbage snapshot data decoded")
	}
}

func TestParseMembers(t *testing.T) {
	ms, err := ParseMembers("1=127.0.0.1:7001/127.0.0.1:8001, 2=h:1/h:2")
	if err != nil || len(ms) != 2 || ms[1] != (Member{ID: 2, PeerAddr: "h:1", HTTPAddr: "h:2"}) {
		t.Fatalf("%+v %v", ms, err)
	}
	if got := FormatMembers(ms); got != "1=127.0.0.1:7001/127.0.0.1:8001,2=h:1/h:2" {
		t.Fatal(got)
	}
	for _, bad := range []string{"1", "0=a/b", "x=a/b", "1=a", "1=a/", "1=a/b,1=c/d"} {
		if _, err := ParseMembers(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

// TestSingleMemberRestart runs a one-member cluster in-process: writes are
// answered with their results, and a restart on the same directory (after
// a snapshot and compaction) finds every key.
func TestSingleMemberRestart(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{ID: 1, ClusterID: 9, Dir: dir, PeerAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0",
		InitialCluster: []Member{{ID: 1, PeerAddr: "127.0.0.1:1", HTTPAddr: "127.0.0.1:2"}},
		SnapshotCount:  10, CatchUpEntries: 2, TickInterval: 10 * time.Millisecond}
	ctx := context.Background()
	start := func() *Server {
		s, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for s.knownLeader() != 1 {
			if time.Now().After(deadline) {
				t.Fatal("no leader")
			}
			time.Sleep(10 * time.Millisecond)
		}
		return s
	}
	s := start()
	for i := 0; i < 25; i++ {
		if _, err := s.Put(ctx, string(rune('a'+i)), "v"); err != nil {
			t.Fatal(err)
		}
	}
	if r, err := s.CompareAndSet(ctx, "a", nil, "w"); err != nil || r.Succeeded || r.Prev != "v" {
		t.Fatalf("CAS on a present key with expect=absent: %+v %v", r, err)
	}
	if _, err := s.Put(ctx, "", "v"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("empty key: %v", err)
	}
	if s.Status().SnapshotIndex == 0 {
		t.Fatal("no snapshot after 25 writes with SnapshotCount 10")
	}
	s.Stop()
	s.Stop()
	if _, err := s.Put(ctx, "z", "v"); !errors.Is(err, ErrStopped) {
		t.Fatalf("put after stop: %v", err)
	}

	wrong := cfg
	wrong.ClusterID = 10
	if _, err := New(wrong); err == nil || !strings.Contains(err.Error(), "belongs to member 1 of cluster 9") {
		t.Fatalf("starting a directory as another cluster: %v", err)
	}
	s = start()
	defer s.Stop()
	for i := 0; i < 25; i++ {
		v, ok, err := s.Get(ctx, string(rune('a'+i)), false)
		if err != nil || !ok || v != "v" {
			t.Fatalf("after restart, key %c: %q %v %v", 'a'+i, v, ok, err)
		}
	}
}

// TestFailedStartReleasesDirectory checks that a New that fails, before or
// after opening the WAL, leaves the data directory unlocked: the next
// attempt on the same directory starts.
func TestFailedStartReleasesDirectory(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{ID: 1, ClusterID: 9, Dir: dir, PeerAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0",
		TickInterval: 10 * time.Millisecond}
	if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), "empty data directory") {
		t.Fatalf("no initial cluster and no join: %v", err)
	}
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	cfg.InitialCluster = []Member{{ID: 1, PeerAddr: "127.0.0.1:1", HTTPAddr: "127.0.0.1:2"}}
	cfg.HTTPAddr = busy.Addr().String()
	if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("busy HTTP port: %v", err)
	}
	cfg.HTTPAddr = "127.0.0.1:0"
	s, err := New(cfg)
	if err != nil {
		t.Fatalf("third start on the same directory: %v", err)
	}
	s.Stop()
}
