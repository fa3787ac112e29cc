package raft

import "fmt"

// SetFastFailover turns fast failover on or off. With it, a follower told
// that its leader is unreachable (ReportUnreachable with the leader's ID;
// raftkit's transport reports a peer whose stream breaks or whose address
// refuses a dial) campaigns once ElectionTick+rank ticks pass without
// word from the leader, rank being its place among the other voters in ID
// order, instead of after a random draw in [ElectionTick, 2*ElectionTick):
// a crashed leader is replaced about an election timeout after its last
// heartbeat, and the followers that heard of the crash do not split the
// vote. A follower never campaigns sooner than ElectionTick ticks after it
// last heard from the leader, and votes are still refused in the
// leader's lease (CheckQuorum, ReadOnlyLeaseBased), and a report about a
// leader that is in fact alive costs nothing while its heartbeats arrive.
//
// A raftkit addition, off by default: etcd/raft's followers ignore the
// report. It is a method rather than a Config field because etcd's Config
// is a struct whose fields are all exported, and a field of ours would
// break unkeyed literals of it and conversions from it.
func (rn *RawNode) SetFastFailover(on bool) { rn.raft.fastFailover = on }

// FastFailover reports whether fast failover is on (SetFastFailover).
func (rn *RawNode) FastFailover() bool { return rn.raft.fastFailover }

// SetFastFailover is RawNode.SetFastFailover for a Node returned by
// StartNode or RestartNode; any other Node is an error. It may be called at
// any time, concurrently with the node's work.
func SetFastFailover(n Node, on bool) error {
	nd, ok := n.(*node)
	if !ok {
		return fmt.Errorf("raft: SetFastFailover needs a Node of StartNode or RestartNode, got %T", n)
	}
	nd.mu.Lock()
	defer nd.mu.Unlock()
	nd.rn.SetFastFailover(on)
	return nil
}
