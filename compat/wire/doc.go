// Package wire holds tests, and nothing else, that check raftkit's raftpb
// against etcd/raft v3.6's on the wire: both encode the same logical value
// to the same bytes, each decodes what the other encodes to the same value,
// Size agrees with Marshal, and the hand-written helpers (conf change
// parsing and conversion, ConfState.Equivalent, enum names) answer alike.
//
// etcd's raftpb runs in the test process; raftkit's runs in a child process
// (internal/wirepeer), because the two register the same protobuf names and
// cannot be linked together.
package wire
