package shared

import (
	"errors"
	"fmt"
	"math/rand"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/raftkit/raft"
	pb "github.com/raftkit/raft/raftpb"
)

// TestConcurrentWritersAndReaders: workers saving batches of their own
// groups (with compactions, so segments rotate, relocate and go) while
// readers read random groups: every entry read is the one written at its
// index, and the race detector sees the locking.
func TestConcurrentWritersAndReaders(t *testing.T) {
	const workers, perWorker, rounds = 4, 5, 150
	w := openTest(t, t.TempDir(), &Options{SegmentSize: 16 << 10, MaxSegments: 3, GroupCacheSize: 256, NoSync: true})
	ids := make([]uint64, workers*perWorker)
	for k := range ids {
		ids[k] = uint64(k + 1)
	}
	require.NoError(t, w.CreateGroups(ids...))
	var stop atomic.Bool
	var readers sync.WaitGroup
	readErr := make(chan error, 2)
	for r := 0; r < 2; r++ {
		readers.Add(1)
		go func(seed int64) {
			defer readers.Done()
			rng := rand.New(rand.NewSource(seed))
			for !stop.Load() {
				if err := readOnce(w, ids[rng.Intn(len(ids))]); err != nil {
					readErr <- err
					return
				}
			}
		}(int64(r))
	}
	var writers sync.WaitGroup
	for wk := 0; wk < workers; wk++ {
		mine := ids[wk*perWorker : (wk+1)*perWorker]
		writers.Add(1)
		go func() {
			defer writers.Done()
			for i := uint64(1); i <= rounds; i++ {
				ups := make([]GroupUpdate, len(mine))
				for k, id := range mine {
					ups[k] = GroupUpdate{GroupID: id, HardState: pb.HardState{Term: 1, Commit: i - 1}, Entries: entsOf(id, i, 1)}
				}
				if err := w.SaveBatch(ups); err != nil {
					t.Error(err)
					return
				}
				if i%10 == 0 {
					for _, id := range mine[:3] { // two groups per worker never compact
						g, _ := w.Group(id)
						if err := g.Compact(i - 5); err != nil {
							t.Error(err)
							return
						}
					}
				}
			}
		}()
	}
	writers.Wait()
	stop.Store(true)
	readers.Wait()
	select {
	case err := <-readErr:
		t.Fatal(err)
	default:
	}
	require.Positive(t, w.Stats().Relocated)
	for _, id := range ids {
		require.NoError(t, readOnce(w, id))
	}
}

// readOnce reads a group's whole log and checks each entry's payload.
func readOnce(w *WAL, id uint64) error {
	g, err := w.Group(id)
	if err != nil {
		return err
	}
	first, _ := g.FirstIndex()
	last, _ := g.LastIndex()
	if last < first {
		return nil
	}
	es, err := g.Entries(first, last+1, 1<<30)
	if errors.Is(err, raft.ErrCompacted) {
		return nil // compacted between the calls
	}
	if err != nil {
		return fmt.Errorf("group %d [%d, %d]: %w", id, first, last, err)
	}
	for k, e := range es {
		want := entsOf(id, first+uint64(k), 1)[0]
		if e.Index != want.Index || string(e.Data) != string(want.Data) {
			return fmt.Errorf("group %d: read entry %d with %q, want %d with %q", id, e.Index, e.Data, want.Index, want.Data)
		}
	}
	return nil
}
