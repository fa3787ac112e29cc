package kvservice

import (
	"testing"

	"github.com/raftkit/raft/transport"
)

// A full round's appends to one peer (roundGroups shards, each up to its
// budget) fit a quarter of a frame, whatever the shard count.
func TestShardRoundFitsAFrame(t *testing.T) {
	for _, n := range []int{1, 2, 64, 100, 256, 1000, 1024, 5000, 100000} {
		round := min(n, roundGroups(n))
		if total := uint64(round) * appendBudget(n); total > uint64(transport.DefaultMaxMessageSize)/4 {
			t.Errorf("%d shards: rounds of %d shards with %d bytes each: %d bytes, over a quarter frame",
				n, round, appendBudget(n), total)
		}
		if b := appendBudget(n); b < 4<<10 || b > 1<<20 {
			t.Errorf("%d shards: budget %d out of [4 KiB, 1 MiB]", n, b)
		}
	}
}
