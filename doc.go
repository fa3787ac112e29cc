// Package raft will hold raftkit's Raft state machine, RawNode and Node.
//
// The core is being built on top of the leaf packages that already exist:
// raftpb (the wire types), quorum (majority and joint quorum arithmetic),
// tracker (per-follower replication progress) and confchange (configuration
// changes with joint consensus). Until it lands, this package exports nothing.
package raft
