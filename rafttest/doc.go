// Package rafttest drives groups of raft.RawNodes through scripted
// interactions, for tests written in the datadriven format.
//
// An InteractionEnv owns a set of nodes (numbered from 1), the messages in
// flight between them and, for nodes using asynchronous storage writes, the
// work queued for each node's append and apply threads. Nothing happens
// unless a directive asks for it: a message stays queued until it is
// delivered or dropped, a Ready is handled only when a directive says so.
// That makes every interleaving a test wants to show reproducible.
//
// Handle interprets one directive. The language (add-nodes, campaign,
// propose, deliver-msgs, process-ready, stabilize, ...) and its output
// formats are those of etcd/raft v3.6's rafttest, so scenario files written
// for either library run on both. raftkit adds a read-index directive, and
// restart, which crashes a node and starts it again from what it persisted
// (its log, its HardState, and the application state at the index the log
// starts after), optionally with a lower durable commit index
// ("restart 1 commit=3": what is lost when the HardState written with
// entries, or a commit-only one, did not reach the disk); the messages in
// flight to it and its queued storage work are lost.
//
// After every stabilize directive the environment checks Raft's safety
// properties across the group (at most one leader per term, log matching
// between the nodes' durable logs, agreement on committed entries, commit
// indexes that never decrease except across a restart) and fails the test
// on a violation.
package rafttest
