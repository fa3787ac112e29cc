package kvservice

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics go through github.com/prometheus/client_golang, on a registry of
// each Server's own: several servers in one process (tests, an embedding
// application) each expose their own numbers, and nothing is registered on
// the global default registry. The registry carries the standard Go runtime
// and process collectors next to the service's metrics.

// fsyncBuckets span a RAM disk (tens of µs) to a struggling spinning disk.
var fsyncBuckets = []float64{
	0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5,
}

// metrics are the service's own counters and the fsync histogram. Raft,
// WAL and transport state are read at scrape time by stateCollector instead
// of being mirrored here.
type metrics struct {
	reg              *prometheus.Registry
	proposals        prometheus.Counter // writes and conf changes handed to raft
	proposalsApplied prometheus.Counter // of those, applied with an answer to the client
	proposalsFailed  prometheus.Counter // of those, answered with an error
	readIndexes      prometheus.Counter // linearizable reads started
	readsFailed      prometheus.Counter // linearizable reads that timed out or had no leader
	entriesCommitted prometheus.Counter // committed entries applied to the state machine
	leaderChanges    prometheus.Counter // times the known leader changed to a non-zero ID
	snapshotsTaken   prometheus.Counter
	snapshotsApplied prometheus.Counter // snapshots received from a leader and installed
	// shardSnapStreams counts a ShardedServer's shard snapshot streams
	// by result (streamSent, ...).
	shardSnapStreams *prometheus.CounterVec
	httpBadRequests  prometheus.Counter // requests refused with a 4xx
	removedPeerDrops prometheus.Counter // messages from removed members dropped before raft
	fsync            prometheus.Histogram
}

func newMetrics() *metrics {
	reg := prometheus.NewRegistry()
	counter := func(name, help string) prometheus.Counter {
		c := prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
		reg.MustRegister(c)
		return c
	}
	m := &metrics{
		reg:              reg,
		proposals:        counter("raftkv_proposals_total", "Writes and membership changes handed to raft by this member."),
		proposalsApplied: counter("raftkv_proposals_applied_total", "Proposals applied and answered with their result."),
		proposalsFailed:  counter("raftkv_proposals_failed_total", "Proposals answered with an error (no leader, leader change, timeout)."),
		readIndexes:      counter("raftkv_read_index_total", "Linearizable reads started."),
		readsFailed:      counter("raftkv_read_index_failed_total", "Linearizable reads that were not confirmed in time."),
		entriesCommitted: counter("raftkv_entries_committed_total", "Committed log entries applied to the state machine."),
		leaderChanges:    counter("raftkv_leader_changes_total", "Times this member saw a new leader."),
		snapshotsTaken:   counter("raftkv_snapshots_taken_total", "State machine snapshots taken (each followed by log compaction)."),
		snapshotsApplied: counter("raftkv_snapshots_installed_total", "Snapshots received from a leader and installed."),
		shardSnapStreams: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "raftkv_shard_snapshot_streams_total",
			Help: "Shard snapshot streams by result: sent (written whole by this member), send_failed, peer_refused (sent, refused by the follower), " +
				"deferred (not started: the follower's last streams failed), received (spooled whole and handed to raft), refused."},
			[]string{"result"}),
		httpBadRequests:  counter("raftkv_http_bad_requests_total", "Requests refused as invalid (4xx)."),
		removedPeerDrops: counter("raftkv_removed_member_messages_dropped_total", "Messages from removed members dropped before raft."),
		fsync: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "raftkv_wal_fsync_duration_seconds",
			Help:    "Time to persist a Ready that must be durable (write and fsync).",
			Buckets: fsyncBuckets,
		}),
	}
	reg.MustRegister(m.fsync, m.shardSnapStreams,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Results of shard snapshot streams (raftkv_shard_snapshot_streams_total).
const (
	streamSent       = "sent"
	streamSendFailed = "send_failed"
	streamReceived   = "received"
	streamRefused    = "refused"
	// streamPeerRefused and streamDeferred are the sender's view of a
	// follower that refuses: each refusal, and each retry the backoff
	// spared (multiraft.SnapshotStreamObserver).
	streamPeerRefused = "peer_refused"
	streamDeferred    = "deferred"
)

func (m *metrics) countStream(result string) { m.shardSnapStreams.WithLabelValues(result).Inc() }

// stateCollector reads raft, WAL and transport state when scraped.
type stateCollector struct{ s *Server }

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, labels, nil)
}

var (
	descIsLeader     = desc("raftkv_is_leader", "1 if this member is the leader.")
	descTerm         = desc("raftkv_term", "Current raft term.")
	descCommit       = desc("raftkv_commit_index", "Raft commit index.")
	descApplied      = desc("raftkv_applied_index", "Index of the last entry applied to the state machine.")
	descKeys         = desc("raftkv_keys", "Keys in the state machine.")
	descWALFsyncs    = desc("raftkv_wal_fsyncs_total", "Data syncs of WAL segments (group commits).")
	descWALBytes     = desc("raftkv_wal_bytes_written_total", "Bytes appended to WAL segments since start.")
	descStateSyncs   = desc("raftkv_state_syncs_total", "Syncs of the state store's log (before log compaction and after installing a snapshot).")
	descHSRefused    = desc("raftkv_transport_handshakes_refused_total", "Incoming peer connections refused (other cluster, unknown member, ...).")
	descStreamErrors = desc("raftkv_transport_stream_errors_total", "Incoming peer streams closed for a protocol error.")
	descMsgsSent     = desc("raftkv_transport_messages_sent_total", "Raft messages written to each peer's stream.", "peer")
	descMsgsRecv     = desc("raftkv_transport_messages_received_total", "Raft messages received from each peer.", "peer")
	descMsgsDropped  = desc("raftkv_transport_messages_dropped_total", "Messages to each peer never sent (queue full, peer down, too large).", "peer")
	descQueueDrops   = desc("raftkv_transport_send_queue_drops_total", "Messages dropped because a peer's send queue was full.", "peer")
	descSnapSent     = desc("raftkv_transport_snapshots_sent_total", "Snapshots each peer acknowledged.", "peer")
	descSnapFailed   = desc("raftkv_transport_snapshots_failed_total", "Snapshots to each peer that failed.", "peer")
	descSnapRecv     = desc("raftkv_transport_snapshots_received_total", "Snapshots from each peer handed to raft.", "peer")
	descSnapRejected = desc("raftkv_transport_snapshots_rejected_total", "Snapshot streams from each peer refused (truncated, corrupt, too large).", "peer")
)

// Describe sends every descriptor the collector may emit.
func (c stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descIsLeader, descTerm, descCommit, descApplied, descKeys,
		descWALFsyncs, descWALBytes, descStateSyncs, descHSRefused, descStreamErrors, descMsgsSent, descMsgsRecv,
		descMsgsDropped, descQueueDrops, descSnapSent, descSnapFailed, descSnapRecv, descSnapRejected} {
		ch <- d
	}
}

// Collect reads the member's state once and emits it.
func (c stateCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.s.Status()
	ts := c.s.tr.Stats()
	ws := c.s.storage.Stats()
	gauge := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v)
	}
	count := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	isLeader := 0.0
	if st.Leader == st.ID {
		isLeader = 1
	}
	gauge(descIsLeader, isLeader)
	gauge(descTerm, float64(st.Term))
	emitProgress(ch, st, ws.Fsyncs, ws.BytesWritten, c.s.store.syncs.Load())
	count(descHSRefused, ts.HandshakesRefused)
	count(descStreamErrors, ts.StreamErrors)
	for id, ps := range ts.Peers {
		k := strconv.FormatUint(id, 10)
		count(descMsgsSent, ps.MsgsSent, k)
		count(descMsgsRecv, ps.MsgsReceived, k)
		count(descMsgsDropped, ps.MsgsDropped, k)
		count(descQueueDrops, ps.QueueDrops, k)
		count(descSnapSent, ps.SnapshotsSent, k)
		count(descSnapFailed, ps.SnapshotsFailed, k)
		count(descSnapRecv, ps.SnapshotsReceived, k)
		count(descSnapRejected, ps.SnapshotsRejected, k)
	}
}

// emitProgress emits what both kinds of member report alike: the commit
// and applied indexes and keys of st, and the WAL's and the store's syncs.
func emitProgress(ch chan<- prometheus.Metric, st Status, walFsyncs, walBytes, storeSyncs uint64) {
	for _, g := range []struct {
		d *prometheus.Desc
		v uint64
	}{{descCommit, st.Commit}, {descApplied, st.Applied}, {descKeys, uint64(st.Keys)}} {
		ch <- prometheus.MustNewConstMetric(g.d, prometheus.GaugeValue, float64(g.v))
	}
	for _, c := range []struct {
		d *prometheus.Desc
		v uint64
	}{{descWALFsyncs, walFsyncs}, {descWALBytes, walBytes}, {descStateSyncs, storeSyncs}} {
		ch <- prometheus.MustNewConstMetric(c.d, prometheus.CounterValue, float64(c.v))
	}
}
