package rafttest

import (
	"fmt"
	"math"
	"testing"

	"github.com/cockroachdb/datadriven"

	"github.com/raftkit/raft"
)

// cmdRaftLog: raft-log ID — prints the entries in the node's storage.
func cmdRaftLog(env *InteractionEnv, t *testing.T, d datadriven.TestData) error {
	return env.RaftLog(env.firstArgNode(t, d))
}

// RaftLog prints the log of the node at index idx into the directive's
// output.
//
// Only durable entries are shown (those in the node's storage), one per
// line; an empty log prints its first and last index instead, which then
// differ by one.
func (env *InteractionEnv) RaftLog(idx int) error {
	n, err := env.node(idx)
	if err != nil {
		return err
	}
	first, last, err := storageBounds(n.Storage)
	if err != nil {
		return err
	}
	if last < first {
		fmt.Fprintf(env.Output, "log is empty: first index=%d, last index=%d", first, last)
		return nil
	}
	ents, err := n.Storage.Entries(first, last+1, math.MaxUint64)
	if err != nil {
		return err
	}
	env.Output.WriteString(raft.DescribeEntries(ents, formatData))
	return nil
}

// storageBounds returns the first and last index of s.
func storageBounds(s raft.Storage) (first, last uint64, err error) {
	if first, err = s.FirstIndex(); err != nil {
		return 0, 0, err
	}
	if last, err = s.LastIndex(); err != nil {
		return 0, 0, err
	}
	return first, last, nil
}
