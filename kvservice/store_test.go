package kvservice

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/raftkit/raft/raftpb"
	"github.com/raftkit/raft/wal"
)

// singleMember is a one-member cluster in dir, for restart tests.
type singleMember struct {
	t   *testing.T
	cfg Config
}

func newSingleMember(t *testing.T, snapCount uint64) *singleMember {
	return &singleMember{t: t, cfg: Config{ID: 1, ClusterID: 9, Dir: t.TempDir(),
		PeerAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0",
		InitialCluster: []Member{{ID: 1, PeerAddr: "127.0.0.1:1", HTTPAddr: "127.0.0.1:2"}},
		SnapshotCount:  snapCount, CatchUpEntries: 2, TickInterval: 10 * time.Millisecond}}
}

// start starts the member and waits until it leads and applied everything
// it has committed.
func (m *singleMember) start() *Server {
	m.t.Helper()
	s, err := New(m.cfg)
	if err != nil {
		m.t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := s.Status()
		if s.knownLeader() == 1 && st.Applied == st.Commit {
			return s
		}
		if time.Now().After(deadline) {
			s.Stop()
			m.t.Fatalf("no leader, or not applied up to commit: %+v", st)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (m *singleMember) put(s *Server, n int, prefix string) {
	m.t.Helper()
	for i := 0; i < n; i++ {
		if _, err := s.Put(context.Background(), fmt.Sprintf("%s%03d", prefix, i), "v"+strconv.Itoa(i)); err != nil {
			m.t.Fatal(err)
		}
	}
}

// entriesApplied writes one key (applied after the new leader's empty
// entry, which precedes it in the log), then returns how many entries the
// member applied since it started.
func entriesApplied(t *testing.T, s *Server) float64 {
	t.Helper()
	if _, err := s.Put(context.Background(), "probe", "v"); err != nil {
		t.Fatal(err)
	}
	return value(t, scrape(t, s), "raftkv_entries_committed_total")
}

// TestRestartReplaysNothingApplied restarts a member whose log holds every
// entry since the cluster began (no snapshot yet): the store says what was
// applied, so the restart applies only the new leader's empty entry (and
// the probe write the count is taken after).
// Without the applied index in the store, all 30 writes would be applied
// again.
func TestRestartReplaysNothingApplied(t *testing.T) {
	m := newSingleMember(t, 1000)
	s := m.start()
	m.put(s, 30, "k")
	s.Stop()

	s = m.start()
	defer s.Stop()
	if n := entriesApplied(t, s); n != 2 {
		t.Fatalf("restart applied %v entries; want only the new term's empty entry and the probe", n)
	}
	st := s.Status()
	if st.Keys != 31 {
		t.Fatalf("after restart: %d keys, want 30 and the probe", st.Keys)
	}
	if v, ok, err := s.Get(context.Background(), "k029", true); err != nil || !ok || v != "v29" {
		t.Fatalf("k029 after restart: %q %v %v", v, ok, err)
	}
}

var errTestCrash = errors.New("test crash before apply")

// TestCrashBetweenPersistAndApply stops a member after raft persisted (and
// committed) a write but before the write reached the store. The restart
// applies exactly that entry and the new leader's empty one: nothing twice,
// nothing lost.
func TestCrashBetweenPersistAndApply(t *testing.T) {
	m := newSingleMember(t, 1000)
	m.cfg.hooks = &testHooks{beforeApply: func(ents []raftpb.Entry) error {
		for _, e := range ents {
			if bytes.Contains(e.Data, []byte(`"key":"crash"`)) {
				return errTestCrash
			}
		}
		return nil
	}}
	s := m.start()
	m.put(s, 10, "k")
	if _, err := s.CompareAndSet(context.Background(), "crash", nil, "1"); err == nil {
		t.Fatal("the write the member crashed on was acknowledged")
	}
	<-s.Done()
	if !errors.Is(s.Err(), errTestCrash) {
		t.Fatalf("stopped with %v", s.Err())
	}

	m.cfg.hooks = nil
	s = m.start()
	defer s.Stop()
	if n := entriesApplied(t, s); n != 3 {
		t.Fatalf("restart applied %v entries; want 3 (the cut-off write, the new term's empty entry, the probe)", n)
	}
	if v, ok, err := s.Get(context.Background(), "crash", true); err != nil || !ok || v != "1" {
		t.Fatalf("crash = %q %v %v after restart, want 1", v, ok, err)
	}
	if st := s.Status(); st.Keys != 12 {
		t.Fatalf("%d keys after restart, want 10, crash and the probe", st.Keys)
	}
}

// TestStoreMissingOrCorrupt: a data directory whose state store is gone or
// damaged does not start, and says why.
func TestStoreMissingOrCorrupt(t *testing.T) {
	m := newSingleMember(t, 5)
	s := m.start()
	m.put(s, 20, "k")
	s.Stop()
	state := filepath.Join(m.cfg.Dir, "state")
	aside := state + ".aside"
	if err := os.Rename(state, aside); err != nil {
		t.Fatal(err)
	}
	if _, err := New(m.cfg); err == nil || !strings.Contains(err.Error(), "state store") ||
		!strings.Contains(err.Error(), "restore the directory") {
		t.Fatalf("missing store: %v", err)
	}
	if err := os.Rename(aside, state); err != nil {
		t.Fatal(err)
	}
	manifests, _ := filepath.Glob(filepath.Join(state, "MANIFEST-*"))
	if len(manifests) == 0 {
		t.Fatal("no Pebble manifest to damage")
	}
	for _, f := range manifests {
		if err := os.WriteFile(f, bytes.Repeat([]byte{0xff}, 512), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := New(m.cfg); err == nil || !strings.Contains(err.Error(), "opening state store") {
		t.Fatalf("corrupt store: %v", err)
	}
}

// TestSnapshotStreamInstall streams a shard from a held Pebble view into a
// file and installs it into another store: the shard's old keys are gone,
// another shard's keys stay, and the meta is the snapshot's.
func TestSnapshotStreamInstall(t *testing.T) {
	src, err := openStateStore(t.TempDir(), true, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer src.close()
	from := shard{st: src, group: defaultGroup}
	want := fillAndPinSource(t, from)
	stream := streamPinnedSnapshot(t, from)
	dir, file := receiveSnapshotStream(t, stream)

	dst, err := openStateStore(t.TempDir(), true, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer dst.close()
	to := shard{st: dst, group: defaultGroup}
	other := shard{st: dst, group: defaultGroup + 1}
	for _, sh := range []shard{to, other} {
		ab := sh.newApplyBatch(0)
		if _, err := ab.apply(command{Op: opPut, Key: "stale", Value: "v"}); err != nil {
			t.Fatal(err)
		}
		if err := ab.commit(7, &shardConfig{}); err != nil {
			t.Fatal(err)
		}
		ab.close()
	}
	if _, err := to.installFile(filepath.Join(dir, file), 50); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, file)); !os.IsNotExist(err) {
		t.Fatalf("installed snapshot file still there: %v", err)
	}
	checkInstalledSnapshot(t, to, other, want)
}

// fillAndPinSource writes 500 keys and a config at index 50 into from,
// pins that state, then writes "later" at 51, which the pinned stream must
// not carry. It returns the keys and values pinned.
func fillAndPinSource(t *testing.T, from shard) map[string]string {
	t.Helper()
	ab := from.newApplyBatch(0)
	want := map[string]string{}
	for i := 0; i < 500; i++ {
		k, v := fmt.Sprintf("key/%d", i), strings.Repeat("x", i%37)
		want[k] = v
		if _, err := ab.apply(command{Op: opPut, Key: k, Value: v}); err != nil {
			t.Fatal(err)
		}
	}
	cfg := shardConfig{Members: map[uint64]Member{1: {ID: 1, PeerAddr: "p", HTTPAddr: "h"}},
		Removed: map[uint64]bool{7: true}, ConfState: raftpb.ConfState{Voters: []uint64{1}}}
	if err := ab.commit(50, &cfg); err != nil {
		t.Fatal(err)
	}
	ab.close()
	from.pin(50, 500, cfg)
	// Writes after the pin are not in the stream.
	ab = from.newApplyBatch(500)
	if _, err := ab.apply(command{Op: opPut, Key: "later", Value: "v"}); err != nil {
		t.Fatal(err)
	}
	if err := ab.commit(51, nil); err != nil {
		t.Fatal(err)
	}
	ab.close()
	return want
}

// streamPinnedSnapshot checks that only the pinned index can be streamed
// and that the stream's size and checksum match what it announces; it
// returns the streamed bytes.
func streamPinnedSnapshot(t *testing.T, from shard) []byte {
	t.Helper()
	if _, err := from.openSnapSource(49); err == nil {
		t.Fatal("opened a stream for an index not held")
	}
	ss, err := from.openSnapSource(50)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if n, err := ss.WriteTo(&buf); err != nil || uint64(n) != ss.Size() ||
		crc32.Checksum(buf.Bytes(), castagnoli) != ss.Checksum() {
		t.Fatalf("stream of %d bytes (%v), announced %d; checksum mismatch or error", n, err, ss.Size())
	}
	ss.Close()
	return buf.Bytes()
}

// receiveSnapshotStream feeds stream into a snapshot sink for index 50 and
// checks the descriptor it commits names a file; it returns the sink's
// directory and that file.
func receiveSnapshotStream(t *testing.T, stream []byte) (dir, file string) {
	t.Helper()
	dir = t.TempDir()
	msg := raftpb.Message{Type: raftpb.MsgSnap, Snapshot: &raftpb.Snapshot{Metadata: raftpb.SnapshotMetadata{Index: 50, Term: 3}}}
	sink, err := newSnapSink(dir, defaultGroup, msg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sink.Write(stream); err != nil {
		t.Fatal(err)
	}
	desc, err := sink.Commit()
	if err != nil {
		t.Fatal(err)
	}
	var d snapDescriptor
	if err := json.Unmarshal(desc, &d); err != nil || d.File == "" {
		t.Fatalf("descriptor %s: %v", desc, err)
	}
	return dir, d.File
}

// checkInstalledSnapshot checks that to holds exactly the pinned state
// (meta, config, keys; no stale or later key) and that other, a different
// group in the same store, kept its key.
func checkInstalledSnapshot(t *testing.T, to, other shard, want map[string]string) {
	t.Helper()
	meta, err := to.load()
	if err != nil || meta.applied != 50 || meta.keys != 500 || !meta.cfg.Removed[7] || meta.cfg.Members[1].PeerAddr != "p" {
		t.Fatalf("installed meta %+v, %v", meta, err)
	}
	for _, k := range []string{"stale", "later"} {
		if _, ok, _ := to.get(k); ok {
			t.Fatalf("%q survived the install", k)
		}
	}
	for k, v := range want {
		if got, ok, err := to.get(k); err != nil || !ok || got != v {
			t.Fatalf("%s = %q %v %v, want %q", k, got, ok, err, v)
		}
	}
	if _, ok, _ := other.get("stale"); !ok {
		t.Fatal("installing group 1 removed group 2's key")
	}
}

// TestFreshMemberFromPebbleSnapshot adds a member to a cluster whose log
// was compacted: it catches up from a snapshot streamed out of the
// leader's store, and holds every key.
func TestFreshMemberFromPebbleSnapshot(t *testing.T) {
	c := newLocalCluster(t, 3, func(cfg *Config) { cfg.SnapshotCount = 20; cfg.CatchUpEntries = 2 })
	ctx := context.Background()
	lead := c.waitLeader()
	for i := 0; i < 80; i++ {
		if err := c.retry(func() error { _, err := c.srv[lead].Put(ctx, "k"+strconv.Itoa(i), "v"); return err }); err != nil {
			t.Fatal(err)
		}
	}
	m4 := newMember(t, 4)
	if err := c.retry(func() error { _, err := c.srv[lead].AddMember(ctx, m4); return err }); err != nil && !errors.Is(err, ErrMemberExists) {
		t.Fatal(err)
	}
	if err := c.start(m4, nil, c.members); err != nil {
		t.Fatal(err)
	}
	c.waitFor("member 4 to hold every key", func() bool { return c.srv[4].Status().Keys == 80 })
	if n := value(t, scrape(t, c.srv[4]), "raftkv_snapshots_installed_total"); n < 1 {
		t.Fatalf("member 4 installed %v snapshots", n)
	}
	for i := 0; i < 80; i++ {
		if v, ok, err := c.srv[4].Get(ctx, "k"+strconv.Itoa(i), true); err != nil || !ok || v != "v" {
			t.Fatalf("member 4: k%d = %q %v %v", i, v, ok, err)
		}
	}
	if files, _ := filepath.Glob(filepath.Join(c.dir, "4", snapDirName, "*")); len(files) != 0 {
		t.Fatalf("received snapshot files left after the install: %v", files)
	}
	// The installed configuration is one the member can change: applying
	// a removal writes to its set of removed IDs, empty in the snapshot.
	victim := uint64(1)
	c.waitFor("member 4 to be promoted", func() bool { return len(c.srv[lead].Status().Voters) == 4 })
	if err := c.retry(func() error { return c.srv[lead].TransferLeader(ctx, 4) }); err != nil {
		t.Fatal(err)
	}
	if err := c.retry(func() error { _, err := c.srv[4].RemoveMember(ctx, victim); return err }); err != nil {
		t.Fatal(err)
	}
	c.waitFor("member 4 to apply the removal", func() bool {
		select {
		case <-c.srv[4].Done():
			t.Fatalf("member 4 stopped: %v", c.srv[4].Err())
		default:
		}
		return len(c.srv[4].Members()) == 3
	})
}

// TestLegacyDirectoryImported starts a data directory written before the
// state store existed (its meta has no store layout, its WAL snapshot holds
// the keys in JSON): the keys are imported and the meta records the store.
func TestLegacyDirectoryImported(t *testing.T) {
	m := newSingleMember(t, 1000)
	st, err := wal.Open(filepath.Join(m.cfg.Dir, "wal"), nil)
	if err != nil {
		t.Fatal(err)
	}
	old := newKVState()
	old.Members[1] = m.cfg.InitialCluster[0]
	old.KV["old-key"] = "old-value"
	data, err := old.marshal()
	if err != nil {
		t.Fatal(err)
	}
	snap := raftpb.Snapshot{Data: data, Metadata: raftpb.SnapshotMetadata{
		Index: 5, Term: 2, ConfState: raftpb.ConfState{Voters: []uint64{1}}}}
	if err := st.Save(raftpb.HardState{Term: 2, Commit: 5}, nil, snap); err != nil {
		t.Fatal(err)
	}
	st.Close()
	if err := writeMeta(filepath.Join(m.cfg.Dir, "meta.json"), metaFile{ID: 1, ClusterID: 9}); err != nil {
		t.Fatal(err)
	}
	s := m.start()
	defer s.Stop()
	if v, ok, err := s.Get(context.Background(), "old-key", true); err != nil || !ok || v != "old-value" {
		t.Fatalf("old-key = %q %v %v", v, ok, err)
	}
	b, err := os.ReadFile(filepath.Join(m.cfg.Dir, "meta.json"))
	if err != nil || !strings.Contains(string(b), storeLayoutVersion) {
		t.Fatalf("meta after import: %s %v", b, err)
	}
}
