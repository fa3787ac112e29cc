// Package scenarios holds tests, and nothing else, that run etcd/raft
// v3.6.0's own datadriven scenario files against raftkit: the quorum and
// confchange files through the harnesses of raftkit's quorum and confchange
// tests (internal/quorumscript, internal/confchangescript), and the
// interaction files of etcd/raft's root package through rafttest's
// environment (internal/scenario). Outputs must match the files line for
// line, except log lines, which raftkit words its own way.
//
// The files are read from etcd/raft's directory in the Go module cache and
// never copied or rewritten.
package scenarios
