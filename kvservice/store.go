package kvservice

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble"
	"github.com/cockroachdb/pebble/bloom"
	"go.uber.org/zap"

	"github.com/raftkit/raft/raftpb"
)

// The state machine lives in one Pebble store per member (Dir/state), shared
// by every shard (raft group) the member hosts. Keys:
//
//	"s" | group (8 bytes, big endian) | "d" | user key    the user's value
//	"s" | group (8 bytes, big endian) | "m" | "applied"   applied index, number of user keys (8 bytes each)
//	"s" | group (8 bytes, big endian) | "m" | "config"    shardConfig (JSON)
//	"v"                                                 the layout version
//
// Stores written before the key count joined the applied index hold an
// 8-byte "applied" and the count under "m" | "keys"; load reads either
// form, and the first batch applied rewrites "applied" in the 16-byte one
// (the old "keys" key stays, unread). One key instead of two matters with
// many shards: a round writes its shards' meta next to a few writes each,
// and every key is a memtable insert. A binary that knows only the
// 8-byte form refuses the 16-byte one (an integer of 16 bytes).
//
// A shard's keys form one contiguous range, so that installing a snapshot
// can drop them with one range deletion. Each batch of applied entries
// writes the data and the applied index together: after a crash the store
// holds a prefix of what was applied, and says exactly which.

// defaultGroup is the group of the one shard raftkv serves today.
const defaultGroup uint64 = 1

// storeLayoutVersion is the value of the "v" key.
const storeLayoutVersion = "raftkv-pebble/1"

var (
	keyVersion     = []byte("v")
	metaApplied    = "applied"
	metaConfig     = "config"
	metaKeys       = "keys" // the key count of stores written before it joined "applied"
	errNoShard     = errors.New("kvservice: shard not in the state store")
	errStoreLayout = errors.New("kvservice: state store has another layout")
)

// shardConfig is the replicated state besides the keys: the members (with
// their addresses), the removed IDs, and raft's configuration as of the
// applied index. It changes only with conf changes.
type shardConfig struct {
	Members   map[uint64]Member `json:"members"`
	Removed   map[uint64]bool   `json:"removed,omitempty"`
	ConfState raftpb.ConfState  `json:"conf_state"`
	// Shards is the cluster's shard count, recorded by shard 0 of a
	// sharded cluster (see hello.go); 0 elsewhere.
	Shards int `json:"shards,omitempty"`
}

// state returns the members and removed IDs as the server keeps them, with
// maps it can write to (JSON leaves an empty one nil).
func (c shardConfig) state() *kvState {
	st := &kvState{Members: c.Members, Removed: c.Removed}
	if st.Members == nil {
		st.Members = map[uint64]Member{}
	}
	if st.Removed == nil {
		st.Removed = map[uint64]bool{}
	}
	return st
}

// clone returns a deep copy, for holders that outlive the loop's next
// change to the original's maps.
func (c shardConfig) clone() shardConfig {
	out := shardConfig{Members: make(map[uint64]Member, len(c.Members)), Removed: make(map[uint64]bool, len(c.Removed))}
	for id, m := range c.Members {
		out.Members[id] = m
	}
	for id := range c.Removed {
		out.Removed[id] = true
	}
	cs := c.ConfState
	out.ConfState = raftpb.ConfState{Voters: append([]uint64(nil), cs.Voters...),
		Learners: append([]uint64(nil), cs.Learners...), VotersOutgoing: append([]uint64(nil), cs.VotersOutgoing...),
		LearnersNext: append([]uint64(nil), cs.LearnersNext...), AutoLeave: cs.AutoLeave}
	out.Shards = c.Shards
	return out
}

// shardMeta is what a shard's meta keys hold. The key count is kept
// because counting a range in Pebble means reading it.
type shardMeta struct {
	applied uint64
	keys    uint64
	cfg     shardConfig
}

// stateStore is a member's Pebble store.
type stateStore struct {
	db  *pebble.DB
	dir string
	// cache is db's block cache (db holds the reference).
	cache *pebble.Cache
	// syncs counts commits made durable with an fsync of Pebble's log.
	syncs atomic.Uint64

	mu   sync.Mutex
	held *heldSnapshot // the view followers are sent, guarded by mu
}

// openStateStore opens the store in dir. With create false, a missing
// store is an error: the caller knows there should be one.
func openStateStore(dir string, create bool, lg *zap.Logger) (*stateStore, error) {
	if !create {
		if _, err := os.Stat(dir); err != nil {
			return nil, fmt.Errorf("kvservice: state store %s: %w (the WAL says the state machine was kept there; "+
				"restore the directory or start this member afresh under a new ID)", dir, err)
		}
	}
	cache := pebble.NewCache(storeCacheBytes)
	defer cache.Unref() // the store holds its own reference
	opts := &pebble.Options{ErrorIfNotExists: !create, Logger: pebbleLogger{lg.Sugar()}, Comparer: wholeKeyComparer,
		// Applying a write reads its key first (for the previous value
		// and the key count); most written keys are new, and bloom
		// filters spare those reads a look into every level.
		Levels: []pebble.LevelOptions{{FilterPolicy: bloom.FilterPolicy(10)}},
		Cache:  cache}
	db, err := pebble.Open(dir, opts)
	if err != nil {
		return nil, fmt.Errorf("kvservice: opening state store %s: %w", dir, err)
	}
	st := &stateStore{db: db, dir: dir, cache: cache}
	if err := st.checkVersion(); err != nil {
		db.Close()
		return nil, err
	}
	return st, nil
}

// storeCacheBytes is the store's block cache. Pebble's default (8 MiB)
// let the read before each write miss: under load, profiles showed the
// index and filter blocks of new tables read from disk (pread and
// snappy) in the apply of most rounds.
const storeCacheBytes = 64 << 20

// wholeKeyComparer is Pebble's default comparer (same name, same order,
// so stores written without it open with it) with a Split that makes a
// whole key its own prefix: the bloom filters are built from whole keys
// either way, and Split lets the apply's read-ahead seek with
// SeekPrefixGE, which consults them (see applyBatch.prefetch).
var wholeKeyComparer = func() *pebble.Comparer {
	c := *pebble.DefaultComparer
	c.Split = func(k []byte) int { return len(k) }
	return &c
}()

func (st *stateStore) checkVersion() error {
	v, closer, err := st.db.Get(keyVersion)
	if errors.Is(err, pebble.ErrNotFound) {
		return st.db.Set(keyVersion, []byte(storeLayoutVersion), pebble.Sync)
	}
	if err != nil {
		return fmt.Errorf("kvservice: reading state store %s: %w", st.dir, err)
	}
	defer closer.Close()
	if string(v) != storeLayoutVersion {
		return fmt.Errorf("%w: %s holds %q, want %q", errStoreLayout, st.dir, v, storeLayoutVersion)
	}
	return nil
}

// close releases the held snapshot and closes the store.
func (st *stateStore) close() error {
	st.mu.Lock()
	if st.held != nil {
		st.held.release()
		st.held = nil
	}
	st.mu.Unlock()
	return st.db.Close()
}

// sync makes every commit so far durable. Commits are not synced one by
// one: raft's WAL holds the entries, and a store that lost its last
// commits in a machine crash still says which index it reached. The store
// must be durable before the WAL forgets entries (log compaction).
func (st *stateStore) sync() error {
	if err := st.db.LogData(nil, pebble.Sync); err != nil {
		return fmt.Errorf("kvservice: syncing state store: %w", err)
	}
	st.syncs.Add(1)
	return nil
}

// shard is one group's part of the store.
type shard struct {
	st    *stateStore
	group uint64
}

func (sh shard) prefix(kind byte) []byte { return sh.key(kind, "") }

// shardPrefixLen is the length of a shard key's prefix: 's', the group,
// the kind.
const shardPrefixLen = 1 + 8 + 1

// key returns the shard's key of the kind for name, in one allocation
// (a write's key is built twice per member as it applies: read ahead,
// then written).
func (sh shard) key(kind byte, name string) []byte {
	b := make([]byte, 0, shardPrefixLen+len(name))
	b = append(b, 's')
	b = binary.BigEndian.AppendUint64(b, sh.group)
	b = append(b, kind)
	return append(b, name...)
}

func (sh shard) dataKey(key string) []byte  { return sh.key('d', key) }
func (sh shard) metaKey(name string) []byte { return sh.key('m', name) }

// span returns the bounds of all the shard's keys, data and meta.
func (sh shard) span() (lo, hi []byte) {
	lo = sh.prefix('d')[:9]
	hi = make([]byte, 0, 9)
	hi = append(hi, 's')
	hi = binary.BigEndian.AppendUint64(hi, sh.group+1)
	return lo, hi
}

// dataSpan returns the bounds of the shard's user keys.
func (sh shard) dataSpan() (lo, hi []byte) {
	lo = sh.prefix('d')
	hi = sh.prefix('d' + 1)
	return lo, hi
}

// load returns the shard's meta keys, or errNoShard.
func (sh shard) load() (shardMeta, error) {
	m, err := sh.readMeta(sh.st.db)
	if errors.Is(err, pebble.ErrNotFound) {
		return m, errNoShard
	}
	if err != nil {
		return m, fmt.Errorf("kvservice: state store %s: group %d: %w", sh.st.dir, sh.group, err)
	}
	return m, nil
}

// readMeta reads the shard's meta keys from r (the store, or a Pebble
// snapshot of it: the meta is written in the same batches as the data, so
// the two agree), in either form of the applied index (see the layout
// above). A shard r does not have gives pebble.ErrNotFound.
func (sh shard) readMeta(r pebble.Reader) (shardMeta, error) {
	var m shardMeta
	get := func(name string) ([]byte, error) {
		v, closer, err := r.Get(sh.metaKey(name))
		if err != nil {
			return nil, err
		}
		defer closer.Close()
		return bytes.Clone(v), nil
	}
	raw, err := get(metaApplied)
	if err == nil && len(raw) == 16 {
		m.applied, m.keys = binary.BigEndian.Uint64(raw), binary.BigEndian.Uint64(raw[8:])
	} else if err == nil {
		m.applied, err = decodeUint64(raw)
		if err == nil {
			raw, err = get(metaKeys)
		}
		if err == nil {
			m.keys, err = decodeUint64(raw)
		}
	}
	if err == nil {
		raw, err = get(metaConfig)
	}
	if err == nil {
		err = json.Unmarshal(raw, &m.cfg)
	}
	return m, err
}

func decodeUint64(b []byte) (uint64, error) {
	if len(b) != 8 {
		return 0, fmt.Errorf("integer of %d bytes", len(b))
	}
	return binary.BigEndian.Uint64(b), nil
}

// get reads a key as of the last commit.
func (sh shard) get(key string) (string, bool, error) {
	v, closer, err := sh.st.db.Get(sh.dataKey(key))
	if errors.Is(err, pebble.ErrNotFound) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	defer closer.Close()
	return string(v), true, nil
}

// putMeta adds the applied index, the key count and, unless nil, the
// configuration to b.
func (sh shard) putMeta(b *pebble.Batch, applied, keys uint64, cfg *shardConfig) error {
	var n [16]byte
	binary.BigEndian.PutUint64(n[:], applied)
	binary.BigEndian.PutUint64(n[8:], keys)
	if err := b.Set(sh.metaKey(metaApplied), n[:], nil); err != nil {
		return err
	}
	if cfg == nil {
		return nil
	}
	data, err := json.Marshal(cfg)
	if err != nil {
		return err
	}
	return b.Set(sh.metaKey(metaConfig), data, nil)
}

// pebbleLogger passes Pebble's logs to zap. Pebble expects Fatalf not to
// return.
type pebbleLogger struct{ lg *zap.SugaredLogger }

func (l pebbleLogger) Infof(format string, args ...interface{})  { l.lg.Debugf(format, args...) }
func (l pebbleLogger) Errorf(format string, args ...interface{}) { l.lg.Errorf(format, args...) }
func (l pebbleLogger) Fatalf(format string, args ...interface{}) {
	panic(fmt.Sprintf("pebble: "+format, args...))
}

// importState replaces the shard with a state in the JSON form, taken at
// index with raft configuration cs, in batches like a received snapshot.
func (sh shard) importState(state *kvState, index uint64, cs raftpb.ConfState) (shardMeta, error) {
	meta := shardMeta{applied: index, keys: uint64(len(state.KV)),
		cfg: shardConfig{Members: state.Members, Removed: state.Removed, ConfState: cs}}
	b := sh.st.db.NewBatch()
	defer func() { b.Close() }()
	lo, hi := sh.dataSpan()
	if err := b.DeleteRange(lo, hi, nil); err != nil {
		return meta, err
	}
	for k, v := range state.KV {
		if err := b.Set(sh.dataKey(k), []byte(v), nil); err != nil {
			return meta, err
		}
		if b.Len() >= installBatchBytes {
			if err := b.Commit(pebble.NoSync); err != nil {
				return meta, err
			}
			b.Close()
			b = sh.st.db.NewBatch()
		}
	}
	if err := sh.putMeta(b, index, meta.keys, &meta.cfg); err != nil {
		return meta, err
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		return meta, err
	}
	return meta, sh.st.sync()
}
