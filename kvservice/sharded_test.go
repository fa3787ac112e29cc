package kvservice

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// shardedCluster runs sharded members in this process.
type shardedCluster struct {
	t       *testing.T
	dir     string
	shards  int
	members []Member
	srv     map[uint64]*ShardedServer
	tweak   func(*Config)
}

func newShardedCluster(t *testing.T, n, shards int, tweak func(*Config)) *shardedCluster {
	c := &shardedCluster{t: t, dir: t.TempDir(), shards: shards, srv: map[uint64]*ShardedServer{}, tweak: tweak}
	for id := uint64(1); id <= uint64(n); id++ {
		c.members = append(c.members, newMember(t, id))
	}
	t.Cleanup(func() {
		for _, s := range c.srv {
			s.Stop()
		}
	})
	for _, m := range c.members {
		c.start(m.ID)
	}
	c.waitSettled()
	return c
}

func (c *shardedCluster) config(id uint64) Config {
	m := c.members[id-1]
	cfg := Config{ID: id, ClusterID: 0x5ad, Dir: filepath.Join(c.dir, strconv.FormatUint(id, 10)),
		PeerAddr: m.PeerAddr, HTTPAddr: m.HTTPAddr, InitialCluster: c.members, Shards: c.shards,
		TickInterval: 20 * time.Millisecond, ElectionTicks: 30, RequestTimeout: 10 * time.Second}
	if c.tweak != nil {
		c.tweak(&cfg)
	}
	return cfg
}

func (c *shardedCluster) start(id uint64) {
	c.t.Helper()
	s, err := NewSharded(c.config(id))
	if err != nil {
		c.t.Fatal(err)
	}
	c.srv[id] = s
}

func (c *shardedCluster) stop(id uint64) {
	c.srv[id].Stop()
	delete(c.srv, id)
}

func (c *shardedCluster) waitFor(what string, cond func() bool) {
	c.t.Helper()
	pollUntil(c.t, 30*time.Second, what, cond)
}

// waitSettled waits until every running member serves and knows a leader
// for every shard.
func (c *shardedCluster) waitSettled() {
	c.t.Helper()
	c.waitFor("every shard led, every member ready", func() bool {
		for _, s := range c.srv {
			if !s.ready.Load() {
				return false
			}
			for _, r := range s.reps {
				if r.leader() == 0 {
					return false
				}
			}
		}
		return true
	})
}

// waitConverged waits until every running member applied what the others
// committed, shard by shard.
func (c *shardedCluster) waitConverged() {
	c.t.Helper()
	c.waitFor("every member to apply every shard's commits", func() bool {
		for i := 0; i < c.shards; i++ {
			var commit uint64
			for _, s := range c.srv {
				commit = max(commit, s.Status().Shards[i].Commit)
			}
			for _, s := range c.srv {
				if s.Status().Shards[i].Applied < commit {
					return false
				}
			}
		}
		return true
	})
}

func (c *shardedCluster) put(id uint64, key, value string) {
	c.t.Helper()
	if err := retryRequest(func() error { _, err := c.srv[id].Put(context.Background(), key, value); return err }); err != nil {
		c.t.Fatalf("put %s via %d: %v", key, id, err)
	}
}

// retryRequest repeats op while nothing was certainly done, or its outcome
// is unknown: the tests' operations are safe to repeat.
func retryRequest(op func() error) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := op()
		if !errors.Is(err, ErrLeaderChanged) && !errors.Is(err, ErrNoLeader) && !errors.Is(err, ErrTimeout) &&
			!errors.Is(err, ErrReadTimeout) || time.Now().After(deadline) {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkKeys reads every key linearizably through member id.
func (c *shardedCluster) checkKeys(id uint64, keys map[string]string) {
	c.t.Helper()
	for k, v := range keys {
		var got string
		var ok bool
		err := retryRequest(func() (err error) {
			got, ok, err = c.srv[id].Get(context.Background(), k, false)
			return err
		})
		if err != nil || !ok || got != v {
			c.t.Fatalf("member %d: %s = %q (found %v, %v), want %q", id, k, got, ok, err, v)
		}
	}
}

// TestShardOfIsStable pins the key to shard mapping: changing it would
// lose every key written before an upgrade.
func TestShardOfIsStable(t *testing.T) {
	for _, tc := range []struct {
		key    string
		shards int
		want   int
	}{
		{"", 4, 1}, {"a", 4, 0}, {"hello", 4, 3}, {"lin/0", 4, 3}, {"lin/1", 4, 0},
		{"hello", 64, 11}, {"load/3/17", 64, 56}, {"hello", 1000, 491}, {"x", 1, 0},
	} {
		if got := ShardOf(tc.key, tc.shards); got != tc.want {
			t.Errorf("ShardOf(%q, %d) = %d, want %d", tc.key, tc.shards, got, tc.want)
		}
	}
	// And it spreads keys: every one of 16 shards gets some of 1,600 keys.
	count := make([]int, 16)
	for i := 0; i < 1600; i++ {
		count[ShardOf(fmt.Sprintf("key/%d", i), 16)]++
	}
	for i, n := range count {
		if n < 50 {
			t.Errorf("shard %d got %d of 1600 keys", i, n)
		}
	}
}

// TestShardedCluster writes through every member into 4 shards: each
// member serves every key (its replica forwards to the shard's leader),
// compare-and-set works per key, the leaders end spread (shard i on member
// i mod 3 + 1), /v1/status shows every shard, and membership changes are
// refused with ErrUnsupported.
func TestShardedCluster(t *testing.T) {
	c := newShardedCluster(t, 3, 4, nil)
	keys := map[string]string{}
	for i := 0; i < 40; i++ {
		k, v := fmt.Sprintf("k%02d", i), fmt.Sprintf("v%d", i)
		c.put(uint64(i%3)+1, k, v)
		keys[k] = v
	}
	c.checkKeys(2, keys)
	// Each key is in the shard ShardOf names, and only there.
	for k := range keys {
		for i, r := range c.srv[2].reps {
			if _, found, err := r.sh.get(k); err != nil || found != (i == ShardOf(k, 4)) {
				t.Fatalf("key %s in shard %d: found %v (%v); ShardOf says %d", k, i, found, err, ShardOf(k, 4))
			}
		}
	}
	s := c.srv[3]
	v := "v7"
	// A proposal refused while the shards' leaders are being placed is
	// certainly not applied (ErrNoLeader): repeating it is safe.
	cas := func(expect *string, value string) (res Result, err error) {
		deadline := time.Now().Add(30 * time.Second)
		for {
			res, err = s.CompareAndSet(context.Background(), "k07", expect, value)
			if !errors.Is(err, ErrNoLeader) || time.Now().After(deadline) {
				return res, err
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	if res, err := cas(&v, "w7"); err != nil || !res.Succeeded {
		t.Fatalf("cas k07 v7->w7: %+v %v", res, err)
	}
	if res, err := cas(&v, "x7"); err != nil || res.Succeeded || res.Prev != "w7" {
		t.Fatalf("cas k07 with a stale expectation: %+v %v", res, err)
	}
	c.waitFor("leaders spread over the members", func() bool {
		for i, sh := range c.srv[1].Status().Shards {
			if sh.Leader != uint64(i%3)+1 {
				return false
			}
		}
		return true
	})
	c.waitConverged()
	st := c.srv[1].Status()
	if len(st.Shards) != 4 || st.Keys != 40 {
		t.Fatalf("status: %+v", st)
	}
	for _, sh := range st.Shards {
		if sh.Keys == 0 || sh.Applied == 0 || sh.Term == 0 {
			t.Errorf("shard %+v: empty", sh)
		}
	}
}

// metricOf returns a counter's value on a sharded member.
func metricOf(t *testing.T, s *ShardedServer, name string) float64 {
	t.Helper()
	mfs, err := s.m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			m := mf.GetMetric()[0]
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// TestShardedRestart stops a member, writes to every shard without it,
// and restarts it: every shard converges, nothing acknowledged is lost,
// and the restart replays no entry the store had already applied (only
// the entries written meanwhile, and the restarted member's hello).
func TestShardedRestart(t *testing.T) {
	c := newShardedCluster(t, 3, 4, nil)
	keys := map[string]string{}
	for i := 0; i < 20; i++ {
		k := fmt.Sprintf("a%02d", i)
		c.put(1, k, "x")
		keys[k] = "x"
	}
	c.waitConverged()
	c.stop(3)
	for i := 0; i < 20; i++ {
		k := fmt.Sprintf("b%02d", i)
		c.put(uint64(i%2)+1, k, "y")
		keys[k] = "y"
	}
	c.start(3)
	if !c.srv[3].ready.Load() {
		t.Error("a restarted member waits to confirm the shard count its store already holds")
	}
	c.waitSettled()
	c.waitConverged()
	c.checkKeys(3, keys)
	// 20 writes, at most a leader's empty entry per shard per term, and
	// hellos; far fewer than the 40+ entries a replay from scratch needs.
	if n := metricOf(t, c.srv[3], "raftkv_entries_committed_total"); n > 36 {
		t.Errorf("the restarted member applied %v entries; want only those written while it was down", n)
	}
	if st := c.srv[3].Status(); st.Keys != 40 {
		t.Errorf("restarted member has %d keys, want 40", st.Keys)
	}
}

// TestShardedSnapshotCatchUp compacts the shards' logs while a member is
// down: it catches up from the leaders' Pebble-state snapshots, inline in
// the MsgSnaps (small shards), and then from its own data once more.
func TestShardedSnapshotCatchUp(t *testing.T) {
	c := newShardedCluster(t, 3, 4, func(cfg *Config) { cfg.SnapshotCount = 10 })
	keys := map[string]string{}
	put := func(n int, prefix string) {
		for i := 0; i < n; i++ {
			k, v := fmt.Sprintf("%s%03d", prefix, i), fmt.Sprintf("v%d", i)
			c.put(1, k, v)
			keys[k] = v
		}
	}
	put(10, "a")
	c.waitConverged()
	c.stop(2)
	put(120, "b")
	if metricOf(t, c.srv[1], "raftkv_snapshots_taken_total") < 4 {
		t.Fatal("the shards took no snapshots")
	}
	c.start(2)
	c.waitSettled()
	c.waitConverged()
	if n := metricOf(t, c.srv[2], "raftkv_snapshots_installed_total"); n < 1 {
		t.Errorf("member 2 caught up past compacted logs without a snapshot")
	}
	c.checkKeys(2, keys)
	c.stop(2)
	c.start(2)
	c.waitSettled()
	c.waitConverged()
	c.checkKeys(2, keys)
	if st := c.srv[2].Status(); st.Keys != len(keys) {
		t.Errorf("member 2 has %d keys, want %d", st.Keys, len(keys))
	}
}

// TestShardCountMismatch: a member started with another shard count than
// the cluster's stops with ErrShardCount once its hello is refused,
// without serving, and a directory refuses another shard count.
func TestShardCountMismatch(t *testing.T) {
	c := &shardedCluster{t: t, dir: t.TempDir(), shards: 4, srv: map[uint64]*ShardedServer{}}
	for id := uint64(1); id <= 3; id++ {
		c.members = append(c.members, newMember(t, id))
	}
	t.Cleanup(func() {
		for _, s := range c.srv {
			s.Stop()
		}
	})
	c.start(1)
	c.start(2)
	c.waitSettled()
	cfg := c.config(3)
	cfg.Shards = 8
	s, err := NewSharded(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	select {
	case <-s.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("a member with 8 shards in a 4-shard cluster kept running")
	}
	if !errors.Is(s.Err(), ErrShardCount) {
		t.Fatalf("stopped with %v, want ErrShardCount", s.Err())
	}
	if s.ready.Load() {
		t.Fatal("the mismatched member served requests")
	}

	c.stop(2)
	cfg = c.config(2)
	cfg.Shards = 8
	if _, err := NewSharded(cfg); !errors.Is(err, ErrShardCount) {
		t.Fatalf("a 4-shard directory started with 8 shards: %v, want ErrShardCount", err)
	}
	cfg.Shards = 0
	if _, err := New(cfg); !errors.Is(err, ErrShardCount) {
		t.Fatalf("a 4-shard directory started as one group: %v, want ErrShardCount", err)
	}
}
