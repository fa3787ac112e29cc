// Package shared is the part of the cross-library benchmark that every
// library's binary links: the workload runner (proposers, latency, failover,
// memory), the result line the driver parses, and a TCP framing transport
// over raw message bytes for the etcd-style libraries, whose raftpb types
// differ but whose messages are all protobuf bytes.
//
// It has no dependencies, so that a binary built against etcd/raft v3.6 or
// v3.7 links no raftkit code (the raftpb packages register the same
// protobuf names and cannot share a binary).
package shared
