package transport

import "sync/atomic"

// PeerStats counts what happened on the streams to and from one peer since it
// was added. All counters only grow.
type PeerStats struct {
	// MsgsSent counts messages encoded onto the peer's message stream. A
	// stream that breaks may lose the last of them; the break is reported
	// to raft as the peer being unreachable.
	MsgsSent uint64
	// MsgsReceived counts messages from the peer handed to Raft.Process.
	MsgsReceived uint64
	// MsgsDropped counts messages for the peer that were never put on a
	// stream: queue full, no stream up (peer down or refusing), or too
	// large. QueueDrops is the queue-full part of it.
	MsgsDropped uint64
	QueueDrops  uint64
	// Connects counts message streams established to the peer; Reconnects
	// the ones after the first. DialFailures counts failed attempts
	// (connection refused, TLS failure, handshake refused, timeout).
	Connects     uint64
	Reconnects   uint64
	DialFailures uint64
	// SnapshotsSent and SnapshotsFailed count outgoing MsgSnaps by the
	// outcome reported to raft (SnapshotFinish, SnapshotFailure).
	SnapshotsSent   uint64
	SnapshotsFailed uint64
	// SnapshotsReceived counts snapshots from the peer handed to raft;
	// SnapshotsRejected the incoming snapshot streams refused (truncated,
	// corrupted, too large, or refused by Raft.Process).
	SnapshotsReceived uint64
	SnapshotsRejected uint64
}

// Stats is a point-in-time copy of a transport's counters, for export as
// metrics.
type Stats struct {
	// Peers holds the counters of every current peer, by ID.
	Peers map[uint64]PeerStats
	// HandshakesRefused counts incoming connections refused at the
	// handshake: another cluster, an unknown member, another receiver,
	// another protocol version or a malformed hello.
	HandshakesRefused uint64
	// StreamErrors counts incoming streams closed for a protocol error
	// (oversized frame, undecodable message, a message not from the
	// handshake's sender or not for this member).
	StreamErrors uint64
	// UnknownPeerDrops counts messages given to Send for an ID that is not
	// a peer.
	UnknownPeerDrops uint64
}

// peerCounters is the live, atomically updated form of PeerStats.
type peerCounters struct {
	msgsSent, msgsReceived, msgsDropped, queueDrops atomic.Uint64
	connects, reconnects, dialFailures              atomic.Uint64
	snapsSent, snapsFailed                          atomic.Uint64
	snapsReceived, snapsRejected                    atomic.Uint64
}

func (c *peerCounters) snapshot() PeerStats {
	return PeerStats{
		MsgsSent:          c.msgsSent.Load(),
		MsgsReceived:      c.msgsReceived.Load(),
		MsgsDropped:       c.msgsDropped.Load(),
		QueueDrops:        c.queueDrops.Load(),
		Connects:          c.connects.Load(),
		Reconnects:        c.reconnects.Load(),
		DialFailures:      c.dialFailures.Load(),
		SnapshotsSent:     c.snapsSent.Load(),
		SnapshotsFailed:   c.snapsFailed.Load(),
		SnapshotsReceived: c.snapsReceived.Load(),
		SnapshotsRejected: c.snapsRejected.Load(),
	}
}
