package kvservice

import (
	"testing"

	"go.uber.org/zap"

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

// A member's host writes each round's Pebble batch behind the rounds
// (multiraft.HostConfig.ApplyQueue): a slow commit must not hold up the
// next round of every shard (README, "Where the 64-shard p99 comes
// from"). The kvservice tests and the sharded end-to-end tests run with
// it; this pins the setting.
func TestShardHostAppliesBehindTheRounds(t *testing.T) {
	s := &ShardedServer{cfg: Config{ID: 1, Shards: 64, ElectionTicks: 10}, lg: zap.NewNop()}
	if q := s.hostConfig(nil, nil).ApplyQueue; q < 1 {
		t.Fatalf("host ApplyQueue %d: rounds would wait for their Pebble apply", q)
	}
}
