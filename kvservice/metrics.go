package kvservice

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// The metrics are written in the Prometheus text exposition format (version
// 0.0.4) by hand: the service needs a handful of counters, gauges and one
// histogram, which does not justify a client library dependency.

// counter only grows.
type counter struct{ v atomic.Uint64 }

func (c *counter) inc()         { c.v.Add(1) }
func (c *counter) add(n uint64) { c.v.Add(n) }
func (c *counter) get() uint64  { return c.v.Load() }

// histogram counts observations into fixed cumulative buckets, as Prometheus
// histograms do. Buckets are upper bounds in seconds, ascending.
type histogram struct {
	mu      sync.Mutex
	bounds  []float64
	counts  []uint64 // counts[i]: observations <= bounds[i] but > bounds[i-1]
	sum     float64
	samples uint64
}

func newHistogram(bounds ...float64) *histogram {
	return &histogram{bounds: bounds, counts: make([]uint64, len(bounds))}
}

func (h *histogram) observe(d time.Duration) {
	s := d.Seconds()
	i := sort.SearchFloat64s(h.bounds, s)
	h.mu.Lock()
	if i < len(h.counts) {
		h.counts[i]++
	}
	h.sum += s
	h.samples++
	h.mu.Unlock()
}

// fsyncBuckets span a RAM disk (tens of µs) to a struggling spinning disk.
var fsyncBuckets = []float64{
	0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5,
}

// metrics are the service's own counters. Raft and transport state are read
// at exposition time instead of being mirrored here.
type metrics struct {
	proposals        counter // writes and conf changes handed to raft
	proposalsApplied counter // of those, applied with an answer to the client
	proposalsFailed  counter // of those, answered with an error (dropped, timeout, leader change)
	readIndexes      counter // linearizable reads started
	readsFailed      counter // linearizable reads that timed out or had no leader
	entriesCommitted counter // committed entries applied to the state machine
	leaderChanges    counter // times the known leader changed to a different non-zero ID
	snapshotsTaken   counter
	snapshotsApplied counter // snapshots received from a leader and installed
	httpBadRequests  counter // requests refused with a 4xx
	removedPeerDrops counter // messages from removed members dropped before raft
	fsync            *histogram
}

func newMetrics() *metrics {
	return &metrics{fsync: newHistogram(fsyncBuckets...)}
}

// promWriter writes metric families, each with its HELP and TYPE lines
// once, in the text exposition format.
type promWriter struct {
	w   io.Writer
	err error
}

func (p *promWriter) printf(format string, args ...any) {
	if p.err == nil {
		_, p.err = fmt.Fprintf(p.w, format, args...)
	}
}

func (p *promWriter) header(name, typ, help string) {
	p.printf("# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
}

func (p *promWriter) counter(name, help string, v uint64) {
	p.header(name, "counter", help)
	p.printf("%s %d\n", name, v)
}

func (p *promWriter) gauge(name, help string, v float64) {
	p.header(name, "gauge", help)
	p.printf("%s %s\n", name, formatFloat(v))
}

// labeled writes one sample per label value, sorted for stable output.
func (p *promWriter) labeled(name, typ, help, label string, vals map[string]uint64) {
	p.header(name, typ, help)
	keys := make([]string, 0, len(vals))
	for k := range vals {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		p.printf("%s{%s=%q} %d\n", name, label, k, vals[k])
	}
}

func (p *promWriter) histogram(name, help string, h *histogram) {
	h.mu.Lock()
	counts := append([]uint64(nil), h.counts...)
	sum, n := h.sum, h.samples
	h.mu.Unlock()
	p.header(name, "histogram", help)
	var cum uint64
	for i, b := range h.bounds {
		cum += counts[i]
		p.printf("%s_bucket{le=%q} %d\n", name, formatFloat(b), cum)
	}
	p.printf("%s_bucket{le=\"+Inf\"} %d\n", name, n)
	p.printf("%s_sum %s\n%s_count %d\n", name, formatFloat(sum), name, n)
}

func formatFloat(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}
