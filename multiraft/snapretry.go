package multiraft

import (
	"io"
	"sync"
	"sync/atomic"
)

// Retries of streamed snapshots. raft sends a follower whose snapshot
// failed a new MsgSnap about one heartbeat later, and a stream costs the
// leader a read of the whole state (SnapshotSource) and the bandwidth to
// send it. A follower that keeps refusing, or a stream that keeps
// breaking, would cost that every heartbeat. So a transport that streams
// snapshots keeps, per sending host, follower and group, the failed
// streams in a row, and after the n-th starts none for
// min(HeartbeatTick * 2^(n-1), snapRetryElections * ElectionTick) of the
// sending host's ticks: a MsgSnap raft sends meanwhile is failed at once
// (Host.ReportSnapshot(SnapshotFailure), as for a stream that failed),
// without opening its source. A stream that succeeds forgets the streak.
// The clock is the host's Tick count, so that tests drive it by hand.

// snapRetryElections is the longest wait between streams to a failing
// follower, in election timeouts.
const snapRetryElections = 4

// snapKey names one direction of a group's snapshots between two hosts.
type snapKey struct {
	from, to HostID
	g        GroupID
}

// snapRetry is the backoff state of one snapKey.
type snapRetry struct {
	// failures is the number of failed streams in a row.
	failures int
	// until is the host tick from which a stream may start again.
	until int64
}

// snapBackoff is the backoff of a transport's snapshot streams. Its
// methods are safe for concurrent use.
type snapBackoff struct {
	mu sync.Mutex
	m  map[snapKey]snapRetry
	// pruneAt is the size of m at which failed next drops stale entries
	// (amortised: it doubles with what survives).
	pruneAt int
}

// waiting reports whether a stream for k must not start at tick now.
// No wait is longer than limit: a longer one was set on another clock (a
// host restarted over the same transport counts its ticks from zero).
func (b *snapBackoff) waiting(k snapKey, now, limit int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	r, ok := b.m[k]
	return ok && now < r.until && r.until-now <= limit
}

// stale reports whether r says nothing about a stream at tick now: its
// wait ended more than limit ticks ago (the follower was not tried since:
// it caught up, or the sender stopped leading), or it was set on another
// clock (see waiting).
func (r snapRetry) stale(now, limit int64) bool {
	return now-r.until > limit || r.until-now > limit
}

// failed records a failed stream for k at tick now and returns the new
// state. A stale streak starts again.
func (b *snapBackoff) failed(k snapKey, now, base, limit int64) snapRetry {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.m == nil {
		b.m = make(map[snapKey]snapRetry)
	}
	if len(b.m) >= b.pruneAt {
		b.prune(now, limit)
	}
	r := b.m[k]
	if r.stale(now, limit) {
		r = snapRetry{}
	}
	r.failures++
	r.until = now + retryDelay(r.failures, base, limit)
	b.m[k] = r
	return r
}

// succeeded forgets k's streak.
func (b *snapBackoff) succeeded(k snapKey) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.m, k)
}

// prune drops the stale entries. b.mu held.
func (b *snapBackoff) prune(now, limit int64) {
	for k, r := range b.m {
		if r.stale(now, limit) {
			delete(b.m, k)
		}
	}
	b.pruneAt = max(16, 2*len(b.m))
}

// retryDelay is the wait after the n-th failure in a row (n >= 1): base
// doubled n-1 times, at most limit, at least one tick.
func retryDelay(n int, base, limit int64) int64 {
	d := max(base, 1)
	for i := 1; i < n && d < limit; i++ {
		d *= 2
	}
	return min(d, max(limit, 1))
}

// snapRetryBounds returns h's clock and the shortest and longest waits,
// in ticks.
func (h *Host) snapRetryBounds() (now, base, limit int64) {
	return h.ticks.Load(), int64(h.cfg.HeartbeatTick), int64(snapRetryElections * h.cfg.ElectionTick)
}

// SnapshotTraffic counts a transport's snapshot streams since it started.
type SnapshotTraffic struct {
	// Sent counts the outgoing streams the receiver took, Failed those
	// that failed (source, connection, or the receiver's refusal), and
	// Deferred the MsgSnaps failed at once, without a stream, because
	// the follower's last streams failed (see snapRetryElections).
	Sent, Failed, Deferred uint64
	// Received counts the incoming streams handed to the host whole;
	// Refused those refused or broken.
	Received, Refused uint64
	// BytesSent and BytesReceived count the streams' bytes on the wire
	// (frames included; the receiver's answers not), whatever the
	// streams' outcome.
	BytesSent, BytesReceived uint64
}

// snapBook is a transport's bookkeeping of its snapshot streams: the
// backoff and SnapshotTraffic's counters.
type snapBook struct {
	backoff                                   snapBackoff
	sent, failed, deferred, received, refused atomic.Uint64
	bytesOut, bytesIn                         atomic.Uint64
}

// traffic returns the counters.
func (sb *snapBook) traffic() SnapshotTraffic {
	return SnapshotTraffic{Sent: sb.sent.Load(), Failed: sb.failed.Load(), Deferred: sb.deferred.Load(),
		Received: sb.received.Load(), Refused: sb.refused.Load(),
		BytesSent: sb.bytesOut.Load(), BytesReceived: sb.bytesIn.Load()}
}

// SnapshotStreamObserver may be implemented by the SnapshotStreams of a
// transport's sending host to hear of its streams' failures and of the
// backoff that follows them (metrics, logs). Its methods are called from
// the transport's goroutines and must not block.
type SnapshotStreamObserver interface {
	// SnapshotStreamFailed: a stream of group g's snapshot to host to
	// failed with err (ErrSnapshotRefused when the receiver refused it),
	// the failures-th in a row; the next waits wait host ticks.
	SnapshotStreamFailed(g GroupID, to HostID, err error, failures int, wait int64)
	// SnapshotStreamDeferred: a MsgSnap of group g to host to was failed
	// without a stream, during the wait.
	SnapshotStreamDeferred(g GroupID, to HostID)
}

// hold reports whether the MsgSnap for k must be failed at once: k is
// waiting out a backoff on h's clock (h, the sending host, nil if not
// served yet: no backoff). It counts the deferral and tells s, the
// sender's streams, if it observes them.
func (sb *snapBook) hold(h *Host, k snapKey, s SnapshotStreams) bool {
	if h == nil {
		return false
	}
	now, _, limit := h.snapRetryBounds()
	if !sb.backoff.waiting(k, now, limit) {
		return false
	}
	sb.deferred.Add(1)
	if o, ok := s.(SnapshotStreamObserver); ok {
		o.SnapshotStreamDeferred(k.g, k.to)
	}
	return true
}

// outcome records a stream's outcome on h's clock (nil: counted only)
// and tells s of a failure, if it observes them. For a failure it
// returns the streak and the ticks until the next stream may start. Call
// it before the outcome reaches raft, so that the MsgSnap raft sends in
// answer meets the backoff.
func (sb *snapBook) outcome(h *Host, k snapKey, err error, s SnapshotStreams) (failures int, wait int64) {
	if err == nil {
		sb.sent.Add(1)
		sb.backoff.succeeded(k)
		return 0, 0
	}
	sb.failed.Add(1)
	if h != nil {
		now, base, limit := h.snapRetryBounds()
		r := sb.backoff.failed(k, now, base, limit)
		failures, wait = r.failures, r.until-now
	}
	if o, ok := s.(SnapshotStreamObserver); ok {
		o.SnapshotStreamFailed(k.g, k.to, err, failures, wait)
	}
	return failures, wait
}

// countingWriter adds the bytes written through it to n.
type countingWriter struct {
	w io.Writer
	n *atomic.Uint64
}

func (c countingWriter) Write(p []byte) (int, error) {
	k, err := c.w.Write(p)
	c.n.Add(uint64(k))
	return k, err
}

// countingReader adds the bytes read through it to n.
type countingReader struct {
	r io.Reader
	n *atomic.Uint64
}

func (c countingReader) Read(p []byte) (int, error) {
	k, err := c.r.Read(p)
	c.n.Add(uint64(k))
	return k, err
}
