package kvservice

import (
	"fmt"
	"testing"
)

// TestShardedHostMetrics checks the multiraft host's counters a sharded
// member exports: rounds, batches, items, and the heartbeats that travel
// coalesced (one item per peer host per round for all its shards), which
// awake shards send as soon as they have leaders, and the time the rounds
// spent stepping and saving.
func TestShardedHostMetrics(t *testing.T) {
	c := newShardedCluster(t, 3, 8, nil)
	for i := 0; i < 16; i++ {
		c.put(uint64(i%3)+1, fmt.Sprintf("k%02d", i), "v")
	}
	c.waitFor("coalesced heartbeats counted", func() bool {
		for _, s := range c.srv {
			if metricOf(t, s, "raftkv_multiraft_coalesced_heartbeats_sent_total") > 0 {
				return true
			}
		}
		return false
	})
	for id, s := range c.srv {
		rounds := metricOf(t, s, "raftkv_multiraft_rounds_total")
		batches := metricOf(t, s, "raftkv_multiraft_batches_sent_total")
		items := metricOf(t, s, "raftkv_multiraft_messages_sent_total")
		if rounds == 0 || batches == 0 || items < batches {
			t.Errorf("member %d: rounds %v, batches %v, items %v", id, rounds, batches, items)
		}
		// Every member saved (the writes' entries), so its rounds spent
		// time stepping and saving.
		step := metricOf(t, s, "raftkv_multiraft_round_step_seconds_total")
		save := metricOf(t, s, "raftkv_multiraft_round_save_seconds_total")
		if step <= 0 || save <= 0 {
			t.Errorf("member %d: round step %vs, save %vs", id, step, save)
		}
	}
}
