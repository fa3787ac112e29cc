package kvservice

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// shardCollector reads a ShardedServer's state when scraped: the sums over
// its shards, the shared WAL's and the store's syncs (the names Server's
// collector uses, so that "raftkv load" reads either), and the shards led.
type shardCollector struct{ s *ShardedServer }

var (
	descShards    = desc("raftkv_shards", "Shards (raft groups) this member hosts.")
	descShardsLed = desc("raftkv_shards_led", "Shards this member leads.")
	descRounds    = desc("raftkv_multiraft_rounds_total", "Rounds of the member's multiraft host (each one WAL write).")
	descGroupsRun = desc("raftkv_multiraft_groups_run_total", "Shards processed by the host's rounds (over rounds: shards per round).")
	descHostMsgs  = desc("raftkv_multiraft_messages_sent_total", "Items the host sent to its peers: raft messages of its shards, a round's coalesced heartbeats (or their answers) to one peer counting once.")
	descHostBatch = desc("raftkv_multiraft_batches_sent_total", "Batches (one per peer and round) the host sent.")
	descHostBeats = desc("raftkv_multiraft_coalesced_heartbeats_sent_total", "Shard heartbeats and heartbeat answers the host sent inside coalesced items.")
	descRoundStep = desc("raftkv_multiraft_round_step_seconds_total", "Time the host's rounds spent stepping their shards (with the wait for the save pacing).")
	descRoundSave = desc("raftkv_multiraft_round_save_seconds_total", "Time the host's rounds spent saving (one WAL write and fsync each).")
	descRoundWait = desc("raftkv_multiraft_round_apply_wait_seconds_total", "Time the host's rounds waited after their save for the entries applied during it.")
)

// Describe sends every descriptor the collector may emit.
func (c shardCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descShards, descShardsLed, descCommit, descApplied, descKeys,
		descWALFsyncs, descWALBytes, descStateSyncs, descRounds, descGroupsRun, descHostMsgs, descHostBatch, descHostBeats,
		descRoundStep, descRoundSave, descRoundWait} {
		ch <- d
	}
}

// Collect reads the member's state once and emits it.
func (c shardCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.s.Status()
	ws := c.s.w.Stats()
	gauge := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v)
	}
	led := 0
	for _, sh := range st.Shards {
		if sh.Leader == st.ID {
			led++
		}
	}
	gauge(descShards, float64(len(st.Shards)))
	gauge(descShardsLed, float64(led))
	emitProgress(ch, st, ws.Fsyncs, ws.BytesWritten, c.s.store.syncs.Load())
	hs := c.s.host.Stats()
	for _, m := range []struct {
		d *prometheus.Desc
		v uint64
	}{{descRounds, hs.Rounds}, {descGroupsRun, hs.GroupsRun}, {descHostMsgs, hs.ItemsOut}, {descHostBatch, hs.BatchesOut}, {descHostBeats, hs.CoalescedHeartbeats}} {
		ch <- prometheus.MustNewConstMetric(m.d, prometheus.CounterValue, float64(m.v))
	}
	for _, m := range []struct {
		d *prometheus.Desc
		v time.Duration
	}{{descRoundStep, hs.RoundStep}, {descRoundSave, hs.RoundSave}, {descRoundWait, hs.RoundApplyWait}} {
		ch <- prometheus.MustNewConstMetric(m.d, prometheus.CounterValue, m.v.Seconds())
	}
}
