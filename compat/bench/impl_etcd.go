//go:build etcdraft

package bench

import (
	raft "go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
)

// Side names the library these benchmarks are compiled against.
const Side = "etcd"

// The names the benchmarks use, bound to etcd/raft v3.6.0. impl_raftkit.go binds the same
// names to raftkit; nothing else in the package may import either.
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

// NewRawNode is raft.NewRawNode.
func NewRawNode(c *Config) (*RawNode, error) { return raft.NewRawNode(c) }

// NewMemoryStorage is raft.NewMemoryStorage.
func NewMemoryStorage() *MemoryStorage { return raft.NewMemoryStorage() }

// RestartNode is raft.RestartNode.
func RestartNode(c *Config) Node { return raft.RestartNode(c) }

// IsEmptyHardState is raft.IsEmptyHardState.
func IsEmptyHardState(st HardState) bool { return raft.IsEmptyHardState(st) }

// Storage is raft.Storage.
type Storage = raft.Storage

// memStore is a MemoryStorage that counts Entries calls.
type memStore struct {
	*raft.MemoryStorage
	entries int
}

func (s *memStore) Entries(lo, hi, maxSize uint64) ([]pb.Entry, error) {
	s.entries++
	return s.MemoryStorage.Entries(lo, hi, maxSize)
}

func (s *memStore) entriesCalls() int { return s.entries }
func (s *memStore) close() error      { return nil }

// DurableStorageKind says what the durable benchmark runs on: etcd's raft
// module has no durable Storage; etcd's server gives raft a MemoryStorage
// and writes its WAL beside it.
const DurableStorageKind = "MemoryStorage (as etcd's server uses it)"

// openDurable returns node i's store: a MemoryStorage seeded with the
// snapshot of an n-voter group (dir is unused).
func openDurable(string) func(i, n int) durableStore {
	return func(_, n int) durableStore {
		s := raft.NewMemoryStorage()
		if err := s.ApplySnapshot(seedSnapshot(n)); err != nil {
			panic(err)
		}
		return &memStore{MemoryStorage: s}
	}
}
