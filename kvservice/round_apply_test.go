package kvservice

import (
	"encoding/binary"
	"testing"

	"go.uber.org/zap"
)

// A round's batch spans shards: reads come from the read-ahead (the
// store as before the round) under the round's own writes, each shard's
// key count and applied index are its own, and nothing reaches the store
// before the one commit.
func TestRoundBatchAcrossShards(t *testing.T) {
	st, err := openStateStore(t.TempDir(), true, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer st.close()
	a, b := shard{st: st, group: 1}, shard{st: st, group: 2}
	// Before the round: shard a has k=old, shard b nothing.
	pre := a.newApplyBatch(0)
	if _, err := pre.apply(command{Op: opPut, Key: "k", Value: "old"}); err != nil {
		t.Fatal(err)
	}
	if err := pre.commit(5, nil); err != nil {
		t.Fatal(err)
	}
	pre.close()

	rb := st.newRoundBatch()
	defer rb.close()
	if err := rb.prefetch([][]byte{b.dataKey("k"), a.dataKey("k"), a.dataKey("gone"), a.dataKey("k")}); err != nil {
		t.Fatal(err)
	}
	old := "old"
	rb.switchShard(a, 1)
	steps := []struct {
		c         command
		existed   bool
		prev      string
		succeeded bool
	}{
		{command{Op: opCAS, Key: "k", Value: "mid", Expect: &old}, true, "old", true},
		{command{Op: opCAS, Key: "k", Value: "new", Expect: &old}, true, "mid", false},
		{command{Op: opDelete, Key: "k"}, true, "mid", true},
		{command{Op: opPut, Key: "gone", Value: "x"}, false, "", true},
	}
	for i, s := range steps {
		r, err := rb.apply(s.c)
		if err != nil {
			t.Fatal(err)
		}
		if r.Existed != s.existed || r.Prev != s.prev || r.Succeeded != s.succeeded {
			t.Fatalf("shard a, step %d: %+v", i, r)
		}
	}
	if err := rb.putMeta(9, nil); err != nil {
		t.Fatal(err)
	}
	rb.switchShard(b, 0)
	if r, err := rb.apply(command{Op: opPut, Key: "k", Value: "b"}); err != nil || r.Existed {
		t.Fatalf("shard b: %+v, %v: saw shard a's key", r, err)
	}
	if err := rb.putMeta(3, nil); err != nil {
		t.Fatal(err)
	}
	if v, ok, _ := a.get("k"); !ok || v != "old" {
		t.Fatalf("before the commit the store has k=%q (%v), want old", v, ok)
	}
	if err := rb.commitRound(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		sh            shard
		applied, keys uint64
		key, want     string
		exists        bool
	}{{a, 9, 1, "k", "", false}, {a, 9, 1, "gone", "x", true}, {b, 3, 1, "k", "b", true}} {
		v, ok, err := c.sh.get(c.key)
		if err != nil || ok != c.exists || v != c.want {
			t.Fatalf("group %d key %s: %q %v %v", c.sh.group, c.key, v, ok, err)
		}
		raw, err := c.sh.getMeta(metaApplied)
		if err != nil || len(raw) != 16 {
			t.Fatalf("group %d: progress %x (%v), want 16 bytes", c.sh.group, raw, err)
		}
		if applied, keys := binary.BigEndian.Uint64(raw), binary.BigEndian.Uint64(raw[8:]); applied != c.applied || keys != c.keys {
			t.Fatalf("group %d: applied %d keys %d, want %d and %d", c.sh.group, applied, keys, c.applied, c.keys)
		}
	}
}

// getMeta returns a copy of a meta key's value.
func (sh shard) getMeta(name string) ([]byte, error) {
	v, closer, err := sh.st.db.Get(sh.metaKey(name))
	if err != nil {
		return nil, err
	}
	defer closer.Close()
	return append([]byte(nil), v...), nil
}
