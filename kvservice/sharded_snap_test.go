package kvservice

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/raftkit/raft/multiraft"
	"github.com/raftkit/raft/transport"
)

// streamCount returns member s's raftkv_shard_snapshot_streams_total for
// result.
func streamCount(t *testing.T, s *ShardedServer, result string) float64 {
	t.Helper()
	mfs, err := s.m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "raftkv_shard_snapshot_streams_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if m.GetLabel()[0].GetValue() == result {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func spoolFiles(t *testing.T, s *ShardedServer) []string {
	names, err := filepath.Glob(filepath.Join(s.spoolDir(), "*"+spoolSuffix))
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// fillShards writes n keys through member 1 with values that make every
// shard larger than a 200-byte inline bound.
func fillShards(c *shardedCluster, n int) map[string]string {
	keys := map[string]string{}
	for i := 0; i < n; i++ {
		k, v := fmt.Sprintf("k%03d", i), fmt.Sprintf("a value that makes the shards too large to inline %d", i)
		c.put(1, k, v)
		keys[k] = v
	}
	return keys
}

// A shard over the inline bound still snapshots and compacts: its
// snapshot is a descriptor, and a member that was down gets the shard
// streamed from a leader's Pebble snapshot, spooled, installed, and the
// spool file removed.
func TestShardedStreamedSnapshot(t *testing.T) { testStreamedSnapshot(t, nil) }

// The snapshot streams' connections are secured as the batch streams are.
func TestShardedStreamedSnapshotTLS(t *testing.T) {
	ca := newTestCA(t, "raftkit test CA")
	testStreamedSnapshot(t, func(cfg *Config) {
		cfg.PeerServerTLS, cfg.PeerClientTLS = transport.MutualTLS(ca.leaf(t, int64(cfg.ID)+100), ca.pool)
	})
}

func testStreamedSnapshot(t *testing.T, tweak func(*Config)) {
	c := newShardedCluster(t, 3, 2, func(cfg *Config) {
		cfg.SnapshotCount = 10
		cfg.hooks = &testHooks{snapshotLimit: 200}
		if tweak != nil {
			tweak(cfg)
		}
	})
	c.stop(3)
	keys := fillShards(c, 60)
	if n := metricOf(t, c.srv[1], "raftkv_snapshots_taken_total"); n < 2 {
		t.Fatalf("%v snapshots taken over the inline bound, want some (as descriptors)", n)
	}
	c.start(3)
	c.waitSettled()
	c.waitConverged()
	c.checkKeys(3, keys)
	if n := metricOf(t, c.srv[3], "raftkv_snapshots_installed_total"); n < 1 {
		t.Fatalf("member 3 caught up without a snapshot")
	}
	if n := streamCount(t, c.srv[3], streamReceived); n < 1 {
		t.Fatalf("member 3 received %v streams", n)
	}
	if n := streamCount(t, c.srv[1], streamSent) + streamCount(t, c.srv[2], streamSent); n < 1 {
		t.Fatalf("the leaders sent %v streams", n)
	}
	if left := spoolFiles(t, c.srv[3]); len(left) != 0 {
		t.Fatalf("spool files left after the installs: %v", left)
	}
	c.stop(3)
	c.start(3)
	c.waitSettled()
	c.waitConverged()
	c.checkKeys(3, keys)
}

// A member that stops after a streamed snapshot was spooled and saved in
// its WAL, but before the store has it, installs it at restart from the
// spool file (swept only afterwards), and serves every key.
func TestShardedSnapshotInstallCrash(t *testing.T) {
	var crashes atomic.Int32
	c := newShardedCluster(t, 3, 2, func(cfg *Config) {
		cfg.SnapshotCount = 10
		cfg.hooks = &testHooks{snapshotLimit: 200}
		if cfg.ID == 3 {
			cfg.hooks.beforeInstall = func() error {
				if crashes.Add(1) == 1 {
					return errors.New("crash before the install")
				}
				return nil
			}
		}
	})
	c.stop(3)
	keys := fillShards(c, 60)
	c.start(3)
	s3 := c.srv[3]
	<-s3.Done()
	if err := s3.Err(); err == nil || !strings.Contains(err.Error(), "crash before the install") {
		t.Fatalf("member 3 stopped with %v", err)
	}
	if len(spoolFiles(t, s3)) == 0 {
		t.Fatal("no spool file left by the interrupted install")
	}
	c.stop(3)
	c.start(3)
	c.waitSettled()
	c.waitConverged()
	c.checkKeys(3, keys)
	if left := spoolFiles(t, c.srv[3]); len(left) != 0 {
		t.Fatalf("spool files left after the restart: %v", left)
	}
}

// Installing a shard's snapshot holds up the reads of that shard only: a
// read of another shard, made while the install runs, returns.
func TestShardInstallBlocksOnlyItsShard(t *testing.T) {
	var s3 atomic.Pointer[ShardedServer]
	var reads, answered atomic.Int32
	started := make(chan struct{})
	c := newShardedCluster(t, 3, 2, func(cfg *Config) {
		cfg.SnapshotCount = 10
		cfg.hooks = &testHooks{snapshotLimit: 200}
		if cfg.ID == 3 {
			cfg.hooks.beforeInstall = func() error {
				select {
				case <-started:
				case <-time.After(10 * time.Second):
					return errors.New("member 3 not started")
				}
				s := s3.Load()
				// The install runs with its shard locked: keys of
				// both shards are read, with a deadline; those of
				// the other shard must come back.
				reads.Add(1)
				done := make(chan struct{}, 2)
				for _, k := range []string{"k000", "k001", "k002", "k003"} {
					go func() {
						ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
						defer cancel()
						if _, _, err := s.Get(ctx, k, true); err == nil {
							done <- struct{}{}
						}
					}()
				}
				select {
				case <-done:
					answered.Add(1)
				case <-time.After(5 * time.Second):
				}
				return nil
			}
		}
	})
	c.stop(3)
	keys := fillShards(c, 60)
	c.start(3)
	s3.Store(c.srv[3])
	close(started)
	c.waitConverged()
	c.checkKeys(3, keys)
	if reads.Load() == 0 || answered.Load() != reads.Load() {
		t.Fatalf("%d of %d installs let a read through", answered.Load(), reads.Load())
	}
}

// After an install at an index, the shard's spool files of snapshots at
// or below it go (raft ignores those snapshots); later ones, and other
// shards', stay; at start, all of a shard's go.
func TestSweepSpool(t *testing.T) {
	s := &ShardedServer{cfg: Config{Dir: t.TempDir()}, lg: zap.NewNop()}
	if err := os.MkdirAll(s.spoolDir(), 0o755); err != nil {
		t.Fatal(err)
	}
	mk := func(g, i uint64) string {
		name := filepath.Join(s.spoolDir(), fmt.Sprintf("%016x-%016x-123%s", g, i, spoolSuffix))
		if err := os.WriteFile(name, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		return filepath.Base(name)
	}
	left := func() string {
		var names []string
		for _, n := range spoolFiles(t, s) {
			names = append(names, filepath.Base(n))
		}
		return strings.Join(names, " ")
	}
	mk(2, 5)
	mk(2, 30)
	later, other := mk(2, 50), mk(3, 5)
	s.sweepSpoolUpTo(2, 30)
	if got, want := left(), later+" "+other; got != want {
		t.Fatalf("after an install at 30: %s, want %s", got, want)
	}
	s.sweepSpool(2)
	if got := left(); got != other {
		t.Fatalf("after the start's sweep of group 2: %s, want %s", got, other)
	}
}

// testStore opens a store in a temporary directory.
func testStore(t *testing.T) *stateStore {
	st, err := openStateStore(t.TempDir(), true, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.close() })
	return st
}

// writeShard puts keys into sh, with applied and the key count, in one
// batch.
func writeShard(t *testing.T, sh shard, applied uint64, kv map[string]string) {
	b := sh.st.db.NewBatch()
	for k, v := range kv {
		if err := b.Set(sh.dataKey(k), []byte(v), nil); err != nil {
			t.Fatal(err)
		}
	}
	cfg := shardConfig{Members: map[uint64]Member{1: {ID: 1}}}
	if err := sh.putMeta(b, applied, uint64(len(kv)), &cfg); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		t.Fatal(err)
	}
}

func shardKeys(t *testing.T, sh shard) map[string]string {
	lo, hi := sh.dataSpan()
	it, err := sh.st.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	got := map[string]string{}
	for it.First(); it.Valid(); it.Next() {
		got[string(it.Key()[len(lo):])] = string(it.Value())
	}
	return got
}

// A shard streamed from one store (at the applied index its Pebble
// snapshot holds, past the raft snapshot's) and spooled replaces the
// shard in another store: its old keys go, the applied index is the
// stream's, and the neighbouring shards are untouched.
func TestInstallShardSnapshot(t *testing.T) {
	src, dst := testStore(t), testStore(t)
	want := map[string]string{"a": "1", "b": "2", "c": strings.Repeat("x", 100000)}
	writeShard(t, shard{st: src, group: 2}, 40, want)
	writeShard(t, shard{st: dst, group: 2}, 5, map[string]string{"old": "gone", "a": "stale"})
	writeShard(t, shard{st: dst, group: 1}, 7, map[string]string{"n1": "kept"})
	writeShard(t, shard{st: dst, group: 3}, 9, map[string]string{"n3": "kept"})

	source, err := openShardSource(shard{st: src, group: 2}, 30)
	if err != nil {
		t.Fatal(err)
	}
	writeShard(t, shard{st: src, group: 2}, 41, map[string]string{"later": "not in the stream"})
	dir := t.TempDir()
	sink, err := newSpoolSink(dir, 2, 30, newMetrics())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := source.WriteTo(sink); err != nil {
		t.Fatal(err)
	}
	_ = source.Close()
	desc, err := sink.Commit()
	if err != nil {
		t.Fatal(err)
	}
	d, ok := decodeDescriptor(desc)
	if !ok || d.File == "" {
		t.Fatalf("sink's descriptor %s", desc)
	}
	if _, err := openShardSource(shard{st: src, group: 2}, 50); err == nil {
		t.Fatal("a stream opened for a snapshot past the store's applied index")
	}
	hdr, err := shard{st: dst, group: 2}.installFile(filepath.Join(dir, d.File), 30)
	if err != nil {
		t.Fatal(err)
	}
	if hdr.applied() != 40 || hdr.Keys != 3 {
		t.Fatalf("installed a stream at applied %d with %d keys, want 40 and 3", hdr.applied(), hdr.Keys)
	}
	if got := shardKeys(t, shard{st: dst, group: 2}); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("shard holds %v after the install", got)
	}
	meta, err := shard{st: dst, group: 2}.load()
	if err != nil || meta.applied != 40 || meta.keys != 3 {
		t.Fatalf("meta after the install: %+v, %v", meta, err)
	}
	for g, k := range map[uint64]string{1: "n1", 3: "n3"} {
		if got := shardKeys(t, shard{st: dst, group: g}); got[k] != "kept" || len(got) != 1 {
			t.Fatalf("neighbouring shard %d holds %v", g, got)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, d.File)); !os.IsNotExist(err) {
		t.Fatalf("spool file still there after the install: %v", err)
	}
}

// Installing any stream either fails or leaves a shard whose meta agrees
// with its keys; it never panics, and a failed install never moves the
// applied index.
func FuzzInstallStream(f *testing.F) {
	seed := func(kv map[string]string) []byte {
		st, err := openStateStore(f.TempDir(), true, zap.NewNop())
		if err != nil {
			f.Fatal(err)
		}
		defer st.close()
		sh := shard{st: st, group: 1}
		b := st.db.NewBatch()
		for k, v := range kv {
			_ = b.Set(sh.dataKey(k), []byte(v), nil)
		}
		_ = sh.putMeta(b, 12, uint64(len(kv)), &shardConfig{})
		_ = b.Commit(pebble.NoSync)
		src, err := openShardSource(sh, 10)
		if err != nil {
			f.Fatal(err)
		}
		defer src.Close()
		var buf bytes.Buffer
		if _, err := src.WriteTo(&buf); err != nil {
			f.Fatal(err)
		}
		return buf.Bytes()
	}
	f.Add(seed(map[string]string{"a": "1", "b": "2"}))
	f.Add(seed(nil))
	st, err := openStateStore(f.TempDir(), true, zap.NewNop())
	if err != nil {
		f.Fatal(err)
	}
	defer st.close()
	f.Fuzz(func(t *testing.T, stream []byte) {
		sh := shard{st: st, group: 1}
		before, _ := sh.load()
		hdr, err := sh.installStream(bufio.NewReader(bytes.NewReader(stream)), 10)
		after, lerr := sh.load()
		if err != nil {
			if lerr == nil && after.applied != before.applied {
				t.Fatalf("a failed install moved applied from %d to %d", before.applied, after.applied)
			}
			return
		}
		if lerr != nil || after.applied != hdr.applied() || int(after.keys) != len(shardKeys(t, sh)) {
			t.Fatalf("after an install: meta %+v (%v), %d keys", after, lerr, len(shardKeys(t, sh)))
		}
	})
}

// A field whose announced length the stream does not hold fails without
// allocating that length.
func TestReadBytesAllocatesWhatArrives(t *testing.T) {
	stream := append(binary.AppendUvarint(nil, 512<<20), "only a few bytes"...)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	if _, err := readBytes(bufio.NewReader(bytes.NewReader(stream))); err == nil {
		t.Fatal("a field of 512 MiB read from 16 bytes")
	}
	runtime.ReadMemStats(&after)
	if n := after.TotalAlloc - before.TotalAlloc; n > 1<<20 {
		t.Fatalf("reading a 16-byte field announced as 512 MiB allocated %d bytes", n)
	}
}

// A member that cannot take a shard's snapshot (its spool directory is a
// file) shows on the leaders as refusals and, between the backoff's
// retries, deferred snapshots; once it can, it catches up.
func TestShardedSnapshotRefusedThenTaken(t *testing.T) {
	c := newShardedCluster(t, 3, 2, func(cfg *Config) {
		cfg.SnapshotCount = 10
		cfg.hooks = &testHooks{snapshotLimit: 200}
	})
	c.stop(3)
	keys := fillShards(c, 60)
	spool := filepath.Join(c.config(3).Dir, snapDirName)
	if err := os.RemoveAll(spool); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(spool, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	c.start(3)
	leaders := func(result string) float64 {
		return streamCount(t, c.srv[1], result) + streamCount(t, c.srv[2], result)
	}
	c.waitFor("refusals and deferred retries", func() bool {
		return leaders(streamPeerRefused) >= 3 && leaders(streamDeferred) >= 1
	})
	if n := streamCount(t, c.srv[3], streamReceived); n != 0 {
		t.Fatalf("member 3 received %v streams without a spool directory", n)
	}
	if err := os.Remove(spool); err != nil {
		t.Fatal(err)
	}
	c.waitSettled()
	c.waitConverged()
	c.checkKeys(3, keys)
}

// The leader's side of a follower that keeps refusing: each refusal and
// each deferred snapshot counted, other failures left to the source's
// count, and the streak logged at its third refusal and every eighth
// after, not at each.
func TestShardSnapshotRefusalsObserved(t *testing.T) {
	core, logs := observer.New(zap.WarnLevel)
	s := &ShardedServer{m: newMetrics(), lg: zap.New(core)}
	ss := shardStreams{s}
	refused := fmt.Errorf("%w: no room", multiraft.ErrSnapshotRefused)
	for i := 1; i <= 12; i++ {
		ss.SnapshotStreamFailed(1, 3, refused, i, 40)
		ss.SnapshotStreamDeferred(1, 3)
	}
	ss.SnapshotStreamFailed(1, 3, errors.New("dial tcp: connection refused"), 13, 40)
	count := func(result string) float64 { return streamCount(t, s, result) }
	if r, d, f := count(streamPeerRefused), count(streamDeferred), count(streamSendFailed); r != 12 || d != 12 || f != 0 {
		t.Fatalf("counted %v refusals, %v deferrals, %v send failures; want 12, 12, 0", r, d, f)
	}
	var streaks []int64
	for _, e := range logs.All() {
		streaks = append(streaks, e.ContextMap()["refusals_in_a_row"].(int64))
	}
	if !slices.Equal(streaks, []int64{3, 11}) {
		t.Fatalf("logged the streak at %v refusals, want [3 11]", streaks)
	}
}
