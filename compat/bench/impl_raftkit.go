//go:build !etcdraft

package bench

import (
	"fmt"
	"path/filepath"

	raft "github.com/raftkit/raft"
	pb "github.com/raftkit/raft/raftpb"
	"github.com/raftkit/raft/wal"
)

// Side names the library these benchmarks are compiled against.
const Side = "raftkit"

// The names the benchmarks use, bound to raftkit. impl_etcd.go binds the same
// names to etcd/raft v3.6.0; nothing else in the package may import either.
type (
	Config        = raft.Config
	RawNode       = raft.RawNode
	Node          = raft.Node
	Ready         = raft.Ready
	MemoryStorage = raft.MemoryStorage
	Message       = pb.Message
	Entry         = pb.Entry
	HardState     = pb.HardState
	Snapshot      = pb.Snapshot
	ConfState     = pb.ConfState
)

const (
	MsgApp      = pb.MsgApp
	StateLeader = raft.StateLeader
)

// NewMemoryStorage is raft.NewMemoryStorage.
func NewMemoryStorage() *MemoryStorage { return raft.NewMemoryStorage() }

// RestartNode is raft.RestartNode.
func RestartNode(c *Config) Node { return raft.RestartNode(c) }

// IsEmptyHardState is raft.IsEmptyHardState.
func IsEmptyHardState(st HardState) bool { return raft.IsEmptyHardState(st) }

// Storage is raft.Storage.
type Storage = raft.Storage

// walStore is a wal.Storage that counts Entries calls; embedding keeps its
// raft.StorageBounds fast path visible to raft.
type walStore struct {
	*wal.Storage
	entries int
}

func (s *walStore) Entries(lo, hi, maxSize uint64) ([]pb.Entry, error) {
	s.entries++
	return s.Storage.Entries(lo, hi, maxSize)
}

func (s *walStore) entriesCalls() int { return s.entries }
func (s *walStore) close() error      { return s.Storage.Close() }

// DurableStorageKind says what the durable benchmark runs on.
const DurableStorageKind = "wal.Storage, fsync off"

// openDurable opens node i's store: a wal.Storage in a fresh directory
// under dir, fsync off, seeded with the snapshot of an n-voter group.
func openDurable(dir string) func(i, n int) durableStore {
	return func(i, n int) durableStore {
		w, err := wal.Open(filepath.Join(dir, fmt.Sprintf("node%d", i+1)), &wal.Options{NoSync: true, NoPreallocate: true})
		if err != nil {
			panic(err)
		}
		if err := w.ApplySnapshot(seedSnapshot(n)); err != nil {
			panic(err)
		}
		return &walStore{Storage: w}
	}
}

// NewRawNode is raft.NewRawNode, with what raftkit offers beyond etcd and
// the harness allows: RawNode.LendMessages, since every rig copies a
// Ready's messages into its inboxes before it takes the next Ready, and
// RawNode.LendReadStates, since the rigs only count a Ready's read states.
func NewRawNode(c *Config) (*RawNode, error) {
	rn, err := raft.NewRawNode(c)
	if err == nil {
		rn.LendMessages()
		rn.LendReadStates()
	}
	return rn, err
}
