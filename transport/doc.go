/*
Package transport carries raft messages between the members of a cluster over
TCP, optionally secured with mutual TLS. It is a battery: the raft core does
no I/O and does not import it.

Each member runs one Transport, built by New from a Config that names the
cluster, the local member, the address to listen on and the application's
Raft (the receiving end: Process for incoming messages, ReportUnreachable and
ReportSnapshot for delivery outcomes). Peers are added and removed as the
cluster's membership changes; messages from a Ready go to Send:

	tr, err := transport.New(transport.Config{
		ClusterID:  0x1000,
		ID:         1,
		ListenAddr: "127.0.0.1:7001",
		Raft:       transport.NodeRaft{Node: node},
		Logger:     lg,
	})
	...
	_ = tr.AddPeer(2, "127.0.0.1:7002")
	_ = tr.AddPeer(3, "127.0.0.1:7003")
	for rd := range node.Ready() {
		persist(rd)
		tr.Send(rd.Messages) // never blocks
		...
	}

# Streams

A member dials one long-lived message stream to each peer and writes to it
only; messages from the peer arrive on the stream the peer dialed. Every
connection opens with a handshake: a magic number, the protocol version, the
stream kind, the cluster ID, the sender's ID and the ID of the member the
sender means to reach. The listener refuses, with a reason sent back and
logged on both sides, a stream from another cluster (ErrClusterIDMismatch),
from a member it does not know (ErrUnknownMember), for another member
(ErrWrongReceiver) or in another protocol version (ErrVersionMismatch).

On a message stream, each message is one frame: a 4-byte big-endian length
and the message's protobuf encoding. A frame longer than
Config.MaxMessageSize is refused (ErrFrameTooLarge): the receiver logs it and
drops the connection, the sender drops such a message before writing it.

# Never blocking raft

Send only puts messages on per-peer queues of Config.QueueSize. When a queue
is full (the peer is slow) or the peer has no stream (it is down, or refuses
us), messages are dropped, counted, and the peer is reported unreachable so
that raft falls back to probing it; raft resends what matters. Reports come
from the transport's goroutines, folded so that a burst of drops costs raft
one report. A peer that stops reading has its stream closed after
Config.IOTimeout and redialed.

Redials follow Config.Backoff: exponential, capped, with jitter so that a
cluster does not redial a restarted member in lockstep. Config.Clock and
Config.RandSeed make the schedule controllable in tests.

# Snapshots

A MsgSnap travels on a connection of its own, so that a large snapshot does
not hold up heartbeats: a header with the data's length and CRC-32C and the
message without its data, then the data in chunks of
Config.SnapshotChunkSize, then an acknowledgement from the receiver. The
receiver hands raft the snapshot only when every announced byte arrived and
the checksum matched; a stream cut short is rejected (ErrSnapshotTruncated),
as is a damaged one (ErrSnapshotCorrupt) or an oversized one
(ErrSnapshotTooLarge). The sender reports raft.SnapshotFinish once the
receiver acknowledged, raft.SnapshotFailure otherwise.

# TLS

With Config.ServerTLS and Config.ClientTLS set (MutualTLS or LoadMutualTLS
build a matching pair from a certificate and a CA pool), every connection is
TLS 1.3 and both ends must present certificates signed by the cluster's CA.
The handshake's member IDs are not bound to certificate identities: any
holder of a valid certificate may claim any member ID.

# Observing

Logs go to the zap Logger in Config, with the local and remote member IDs
attached. Stats returns counters per peer (messages sent, received and
dropped, queue drops, reconnects, dial failures, snapshots sent, failed,
received and rejected) and transport-wide (refused handshakes, stream errors),
for export as metrics.
*/
package transport
