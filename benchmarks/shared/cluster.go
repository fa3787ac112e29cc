package shared

import (
	"context"
	"errors"
)

// Cluster is one library's 3-voter cluster, each voter with its own TCP
// listener on loopback, driven by the runner.
type Cluster interface {
	// Propose hands data to the current leader and returns once it is
	// committed by a quorum and applied on that leader, or with an error
	// (no leader, leader lost, ctx done).
	Propose(ctx context.Context, data []byte) error
	// WaitLeader blocks until a live voter is leader and returns its index.
	WaitLeader(ctx context.Context) (int, error)
	// Kill stops voter i as a crash would: it stops answering at once.
	Kill(i int)
	// Close stops every voter that is still running.
	Close()
}

// Options is what every library's cluster is built from; the same values go
// to every library so that only the library differs.
type Options struct {
	// Dir holds each voter's data directory (Dir/n1, Dir/n2, Dir/n3).
	Dir string
	// Durable selects the production storage with fsync on; false selects
	// the library's in-memory storage (no fsync).
	Durable bool
	// Addrs are the voters' listen addresses on loopback.
	Addrs []string
	// SnapshotEvery is the compaction policy: after this many entries
	// applied since the last snapshot, snapshot and compact the log, ...
	SnapshotEvery uint64
	// KeepEntries ... keeping this many entries behind the snapshot for
	// slow followers.
	KeepEntries uint64
	// BatchProposals (flag -batch-proposals, on by default) makes the
	// etcd-style drivers hand concurrent proposals to raft.Node as one
	// MsgProp of several entries (Node.Step) instead of one Propose each,
	// as hashicorp's BatchApplyCh does for it (hashicorp ignores this).
	BatchProposals bool
	// AsyncStorage (flag -async-storage, on by default) makes the raftkit
	// driver run its fsync rows with raft's AsyncStorageWrites and the wal's
	// AppendThread, the wal package's pipelined mode. The etcd binaries
	// ignore it: etcd server drives raft synchronously, and etcd's wal has
	// no append thread.
	AsyncStorage bool
}

// ErrNoLeader is returned by Propose when no live voter is leader.
var ErrNoLeader = errors.New("no leader")
