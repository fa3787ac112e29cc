package kvservice

import (
	"fmt"
	"testing"

	"github.com/cockroachdb/pebble"
	"go.uber.org/zap"
)

// lastLevelStore returns a store holding n keys of 64 shards, compacted
// into Pebble's last level, as a store is after a long run.
func lastLevelStore(tb testing.TB, n int) *stateStore {
	tb.Helper()
	st, err := openStateStore(tb.TempDir(), true, zap.NewNop())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.close() })
	val := make([]byte, 128)
	b := st.db.NewBatch()
	for i := 0; i < n; i++ {
		sh := shard{st: st, group: uint64(i % 64)}
		if err := b.Set(sh.dataKey(fmt.Sprintf("old/%d", i)), val, nil); err != nil {
			tb.Fatal(err)
		}
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		tb.Fatal(err)
	}
	if err := st.db.Flush(); err != nil {
		tb.Fatal(err)
	}
	if err := st.db.Compact([]byte{0}, []byte{0xff}, true); err != nil {
		tb.Fatal(err)
	}
	m := st.db.Metrics()
	if last := m.Levels[len(m.Levels)-1].NumFiles; last == 0 {
		tb.Fatalf("no table in the last level after compaction:\n%s", m)
	}
	return st
}

// newKeys returns n data keys the store does not hold, spread over 64
// shards, starting at the from-th.
func newKeys(st *stateStore, from, n int) [][]byte {
	keys := make([][]byte, n)
	for i := range keys {
		sh := shard{st: st, group: uint64((from + i) % 64)}
		keys[i] = sh.dataKey(fmt.Sprintf("new/%d", from+i))
	}
	return keys
}

// The apply's read-ahead consults the bloom filters of the last level's
// tables, which Pebble's iterators skip by default: without them, each
// new key's read searched a table's index and data block there.
func TestPrefetchConsultsLastLevelFilters(t *testing.T) {
	st := lastLevelStore(t, 20000)
	ab := st.newRoundBatch()
	defer ab.close()
	before := st.db.Metrics().Filter.Hits
	keys := newKeys(st, 0, 500)
	if err := ab.prefetch(keys); err != nil {
		t.Fatal(err)
	}
	if hits := st.db.Metrics().Filter.Hits - before; hits < int64(len(keys))*9/10 {
		t.Fatalf("the filters ruled out %d of %d absent keys, want nearly all", hits, len(keys))
	}
	for _, k := range keys {
		if v, ok := ab.fetched[string(k)]; !ok || v != nil {
			t.Fatalf("key %q: fetched %v %v, want known absent", k, v, ok)
		}
	}
	old := shard{st: st, group: 7}.dataKey("old/7")
	if err := ab.prefetch([][]byte{old}); err != nil {
		t.Fatal(err)
	}
	if v := ab.fetched[string(old)]; v == nil || len(*v) != 128 {
		t.Fatalf("existing key %q read as %v", old, v)
	}
}

// BenchmarkPrefetchNewKeys reads ahead rounds of 50 new keys in a store
// whose data is in the last level, with and without that level's filters.
func BenchmarkPrefetchNewKeys(b *testing.B) {
	for _, bc := range []struct {
		name string
		opts *pebble.IterOptions
	}{{"pebble-default", &pebble.IterOptions{}}, {"last-level-filters", &prefetchOptions}} {
		b.Run(bc.name, func(b *testing.B) {
			st := lastLevelStore(b, 300000)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				ab := st.newRoundBatch()
				if err := ab.prefetchWith(newKeys(st, i*50, 50), bc.opts); err != nil {
					b.Fatal(err)
				}
				ab.close()
			}
		})
	}
}

// The single-group server reads each Ready's keys ahead the same way:
// writes of new keys among keys compacted into the last level are ruled
// out by that level's filters, not searched for in its blocks.
func TestSingleGroupReadsAheadWithFilters(t *testing.T) {
	m := newSingleMember(t, 100000)
	s := m.start()
	defer s.Stop()
	m.put(s, 200, "a") // a000 to a199
	db := s.shard.st.db
	if err := db.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := db.Compact([]byte{0}, []byte{0xff}, true); err != nil {
		t.Fatal(err)
	}
	before := db.Metrics().Filter.Hits
	m.put(s, 50, "a1") // a1000 to a1049: new, inside the table's key range
	if hits := db.Metrics().Filter.Hits - before; hits < 40 {
		t.Fatalf("the filters ruled out %d of 50 new keys, want nearly all", hits)
	}
}
