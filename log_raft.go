package raft

import (
	"github.com/raftkit/raft/tracker"
)

// fitLog tells the log what only the node knows: how many durable bytes to
// keep in memory, and where its followers are.
//
// The window keeps durable entries up to Config.MaxInflightBytes (the most a
// follower can have in flight, so a follower's retransmission is served from
// memory), or defaultRetainBytes when that is unbounded. Entries not durable
// yet are always kept, whatever their size.
func (r *raft) fitLog(c *Config) {
	if c.MaxInflightBytes != 0 && c.MaxInflightBytes < noLimit {
		r.log.retainLimit = entryPayloadSize(c.MaxInflightBytes)
	}
	r.log.followerFloor = r.replicationFloor
}

// replicationFloor is the lowest index a leader may have to send again to a
// follower it replicates to: the entry after the follower's match. Followers
// being probed or sent a snapshot are not counted: they are read from
// storage when their turn comes. Any index past the log counts as no need.
func (r *raft) replicationFloor() uint64 {
	floor := uint64(noLimit)
	if r.state != StateLeader {
		return floor
	}
	r.order.Visit(func(id uint64, pr *tracker.Progress) {
		if id != r.id && pr.State == tracker.StateReplicate {
			floor = min(floor, pr.Match+1)
		}
	})
	return floor
}
