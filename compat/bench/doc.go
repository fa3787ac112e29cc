// Package bench measures raftkit and etcd/raft v3.6.0 side by side with one
// benchmark source. The library is chosen at build time: by default the
// package is compiled against raftkit, with the build tag etcdraft against
// etcd/raft. Both cannot share one binary (their raftpb packages register
// the same protobuf names), so scripts/bench-compare.sh builds two test
// binaries and runs them interleaved.
//
// Only the public API is used, so that the same source compiles against
// both. Every benchmark reports allocations; times are per proposal (or per
// entry, per read, per call) so that batch sizes compare directly.
package bench
