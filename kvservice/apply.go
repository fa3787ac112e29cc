package kvservice

import (
	"bytes"
	"errors"
	"slices"

	"github.com/cockroachdb/pebble"
)

// applyBatch gathers the effects of one Ready's committed entries into one
// Pebble batch, committed with the new applied index: the store never holds
// an entry's effect without knowing it applied that entry. Commands read
// the batch's own writes first (a compare-and-set sees the writes of the
// entries before it in the same Ready), then the store; a plain batch with
// this small overlay costs less than an indexed batch.
type applyBatch struct {
	sh shard
	b  *pebble.Batch
	// written holds the batch's writes by data key; nil for a deletion.
	written map[string]*string
	// keys is the shard's key count with the batch's writes.
	keys uint64
	// fetched holds the store's values, read ahead by prefetch, of keys
	// the batch will read (nil: absent); the batch's own writes take
	// precedence.
	fetched map[string]*string
}

func (sh shard) newApplyBatch(keys uint64) *applyBatch {
	return &applyBatch{sh: sh, b: sh.st.db.NewBatch(), written: map[string]*string{}, keys: keys}
}

// newRoundBatch returns a batch for the entries of several shards (a
// multiraft round): switchShard selects the shard whose entries follow,
// putMeta ends each shard's part, commitRound writes them all.
func (st *stateStore) newRoundBatch() *applyBatch {
	return &applyBatch{sh: shard{st: st}, b: st.db.NewBatch(), written: map[string]*string{}}
}

// switchShard makes the commands that follow sh's, whose key count before
// them is keys. The overlay of written keys is kept: keys carry their
// shard's prefix.
func (a *applyBatch) switchShard(sh shard, keys uint64) { a.sh, a.keys = sh, keys }

// putMeta adds the current shard's applied index and key count and,
// unless nil, its configuration.
func (a *applyBatch) putMeta(applied uint64, cfg *shardConfig) error {
	return a.sh.putMeta(a.b, applied, a.keys, cfg)
}

// prefetch reads the store's values of keys into the batch's read-ahead,
// in key order through one iterator (its seeks reuse the files and blocks
// the previous seek loaded), which keys' later reads then find. keys is
// sorted in place.
//
// The iterator consults the bloom filters of the last level too, which
// Pebble skips by default (it expects most keys read there to exist): most
// keys a write reads are new, and in a store of a few hundred MB most
// tables are in the last level, so without its filters nearly every read
// searched a table's index and data block there for a key it does not
// hold (BenchmarkPrefetchNewKeys).
func (a *applyBatch) prefetch(keys [][]byte) error {
	return a.prefetchWith(keys, &prefetchOptions)
}

// prefetchOptions reads the last level's filters (see prefetch).
var prefetchOptions = pebble.IterOptions{UseL6Filters: true}

// prefetchWith is prefetch through an iterator opened with opts.
func (a *applyBatch) prefetchWith(keys [][]byte, opts *pebble.IterOptions) error {
	if len(keys) == 0 {
		return nil
	}
	slices.SortFunc(keys, bytes.Compare)
	it, err := a.sh.st.db.NewIter(opts)
	if err != nil {
		return err
	}
	a.fetched = make(map[string]*string, len(keys))
	for i, k := range keys {
		if i > 0 && bytes.Equal(k, keys[i-1]) {
			continue
		}
		if it.SeekPrefixGE(k) && bytes.Equal(it.Key(), k) {
			v := string(it.Value())
			a.fetched[string(k)] = &v
		} else {
			a.fetched[string(k)] = nil
		}
	}
	if err := it.Error(); err != nil {
		it.Close()
		return err
	}
	return it.Close()
}

// commitRound writes the batch. It is not synced; see stateStore.sync.
func (a *applyBatch) commitRound() error { return a.b.Commit(pebble.NoSync) }

func (a *applyBatch) get(key []byte) (string, bool, error) {
	if v, ok := a.written[string(key)]; ok {
		if v == nil {
			return "", false, nil
		}
		return *v, true, nil
	}
	if v, ok := a.fetched[string(key)]; ok {
		if v == nil {
			return "", false, nil
		}
		return *v, true, nil
	}
	v, closer, err := a.sh.st.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	defer closer.Close()
	return string(v), true, nil
}

// apply executes one command. Every node applies the same commands in the
// same order and so computes the same results.
func (a *applyBatch) apply(c command) (Result, error) {
	k := a.sh.dataKey(c.Key)
	prev, existed, err := a.get(k)
	if err != nil {
		return Result{}, err
	}
	r := Result{Existed: existed, Prev: prev, Succeeded: true}
	switch c.Op {
	case opPut:
		err = a.set(k, c.Value, existed)
	case opDelete:
		if existed {
			err = a.b.Delete(k, nil)
			a.written[string(k)] = nil
			a.keys--
		}
	case opCAS:
		if c.Expect == nil {
			r.Succeeded = !existed
		} else {
			r.Succeeded = existed && prev == *c.Expect
		}
		if r.Succeeded {
			err = a.set(k, c.Value, existed)
		}
	default:
		// Validated before proposing; an unknown op in the log can only
		// come from a newer version, and skipping it on every node keeps
		// the nodes identical.
		r.Succeeded = false
	}
	return r, err
}

func (a *applyBatch) set(k []byte, value string, existed bool) error {
	if !existed {
		a.keys++
	}
	a.written[string(k)] = &value
	return a.b.Set(k, []byte(value), nil)
}

// commit writes the batch with the applied index and, if it changed, the
// configuration. It is not synced; see stateStore.sync.
func (a *applyBatch) commit(applied uint64, cfg *shardConfig) error {
	if err := a.sh.putMeta(a.b, applied, a.keys, cfg); err != nil {
		return err
	}
	return a.b.Commit(pebble.NoSync)
}

func (a *applyBatch) close() { a.b.Close() }
