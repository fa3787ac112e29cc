package kvservice

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/cockroachdb/pebble"
	"go.uber.org/zap"
)

// A shard's applied index and key count are one key: a round writes the
// meta of each of its shards, and each key is a memtable insert.
func TestShardProgressIsOneKey(t *testing.T) {
	st, err := openStateStore(t.TempDir(), true, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer st.close()
	sh := shard{st: st, group: 7}
	b := st.db.NewBatch()
	if err := sh.putMeta(b, 42, 5, nil); err != nil {
		t.Fatal(err)
	}
	if n := b.Count(); n != 1 {
		t.Fatalf("applied index and key count took %d keys, want 1", n)
	}
	if err := sh.putMeta(b, 42, 5, &shardConfig{}); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		t.Fatal(err)
	}
	m, err := sh.load()
	if err != nil || m.applied != 42 || m.keys != 5 {
		t.Fatalf("loaded applied %d keys %d (%v), want 42 and 5", m.applied, m.keys, err)
	}
}

// A store written with the applied index and the key count under two
// keys of 8 bytes still loads, and the next batch rewrites it in the one-key form.
func TestShardProgressReadsTheTwoKeyForm(t *testing.T) {
	st, err := openStateStore(t.TempDir(), true, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer st.close()
	sh := shard{st: st, group: 3}
	put := func(k []byte, v uint64) {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], v)
		if err := st.db.Set(k, n[:], pebble.NoSync); err != nil {
			t.Fatal(err)
		}
	}
	put(sh.metaKey(metaApplied), 9)
	put(sh.metaKey(metaKeys), 4)
	if err := st.db.Set(sh.metaKey(metaConfig), []byte(`{"members":{}}`), pebble.NoSync); err != nil {
		t.Fatal(err)
	}
	m, err := sh.load()
	if err != nil || m.applied != 9 || m.keys != 4 {
		t.Fatalf("loaded applied %d keys %d (%v) from the two-key form, want 9 and 4", m.applied, m.keys, err)
	}
	b := st.db.NewBatch()
	if err := sh.putMeta(b, 10, 6, nil); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		t.Fatal(err)
	}
	if m, err = sh.load(); err != nil || m.applied != 10 || m.keys != 6 {
		t.Fatalf("loaded applied %d keys %d (%v) after a new batch, want 10 and 6", m.applied, m.keys, err)
	}
}

// keySink keeps the keys TestShardDataKeyOneAllocation builds on the heap,
// as the apply's are.
var keySink []byte

// A shard's data key is built in one allocation, whatever the user key's
// length, and holds the prefix then the key.
func TestShardDataKeyOneAllocation(t *testing.T) {
	sh := shard{group: 7}
	key := "a-user-key-longer-than-the-prefix-slack"
	if n := testing.AllocsPerRun(100, func() { keySink = sh.dataKey(key) }); n != 1 {
		t.Fatalf("dataKey made %v allocations, want 1", n)
	}
	k := sh.dataKey(key)
	if want := append(sh.prefix('d'), key...); !bytes.Equal(k, want) || len(sh.prefix('d')) != 1+8+1 {
		t.Fatalf("dataKey = %q, want %q", k, want)
	}
}
