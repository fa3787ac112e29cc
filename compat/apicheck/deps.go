//go:build apicheck_deps

package apicheck

// Check loads etcd's packages by path at run time, which go mod tidy cannot
// see. These imports, never compiled (no build uses the tag), keep every
// package of etcd/raft's public API and its dependencies in go.mod and
// go.sum so that they can always be loaded.
import (
	_ "go.etcd.io/raft/v3"
	_ "go.etcd.io/raft/v3/confchange"
	_ "go.etcd.io/raft/v3/quorum"
	_ "go.etcd.io/raft/v3/raftpb"
	_ "go.etcd.io/raft/v3/rafttest"
	_ "go.etcd.io/raft/v3/tracker"
)

// The same for ours, which is found through the replace directive.
import (
	_ "github.com/raftkit/raft"
	_ "github.com/raftkit/raft/confchange"
	_ "github.com/raftkit/raft/quorum"
	_ "github.com/raftkit/raft/raftpb"
	_ "github.com/raftkit/raft/rafttest"
	_ "github.com/raftkit/raft/tracker"
)
