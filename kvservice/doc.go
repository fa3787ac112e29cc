// Package kvservice is a replicated key-value store on raftkit, with an
// HTTP API (see Server.Handler) and a client (Client). It comes in two
// kinds of member, serving the same API:
//
//   - Server (New): the whole key space in one raft group, a raft.Node on
//     package wal, talking to its peers through package transport, with
//     snapshots streamed from Pebble snapshots. It supports membership
//     changes (members join as learners) and leader transfers.
//   - ShardedServer (NewSharded, Config.Shards): the key space split into
//     shards by ShardOf, one raft group each, all hosted by one
//     multiraft.Host per member over a shared WAL (wal/shared) and one
//     batch stream per peer. Leaders are spread over the members; every
//     member serves every key. A membership change is made in every shard
//     (sharded_member.go, sharded_member_ops.go): a member is added as a
//     learner of every shard, joins them all with Config.Join, and is
//     promoted (decided by the learner) once caught up with each; a change
//     cut short reports its shards done and pending (ShardsError) and is
//     finished by repeating it. A leader transfer moves the shards a
//     member leads (or those named) to another, which keeps them
//     (sharded_member_leader.go); small shards' snapshots travel inline,
//     larger ones are streamed from a Pebble snapshot (see sharded_snap.go).
//
// Both keep the state machine in one Pebble store per member (store.go),
// each shard's applied index written in the same batch as its data, so a
// restart replays nothing already applied.
//
// A linearizable read, in both, asks its group for a read index and asks
// again with the same context every half election timeout until the
// answer comes (read_retry.go): raft drops a read request that no leader
// can confirm without telling anyone, and one request left a read waiting
// for its whole RequestTimeout after a leader change or a lost message.
package kvservice
