//go:build !etcdraft

package bench

import (
	raft "github.com/raftkit/raft"
	pb "github.com/raftkit/raft/raftpb"
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

// NewRawNode is raft.NewRawNode.
func NewRawNode(c *Config) (*RawNode, error) { return raft.NewRawNode(c) }

// NewMemoryStorage is raft.NewMemoryStorage.
func NewMemoryStorage() *MemoryStorage { return raft.NewMemoryStorage() }

// RestartNode is raft.RestartNode.
func RestartNode(c *Config) Node { return raft.RestartNode(c) }

// IsEmptyHardState is raft.IsEmptyHardState.
func IsEmptyHardState(st HardState) bool { return raft.IsEmptyHardState(st) }
