package rafttest

import (
	"errors"
	"strconv"
	"testing"

	"github.com/cockroachdb/datadriven"
)

// cmdCompact: compact ID N — discards the node's log entries up to and
// including N, then prints the remaining log.
func cmdCompact(env *InteractionEnv, t *testing.T, d datadriven.TestData) error {
	idx := env.firstArgNode(t, d)
	if len(d.CmdArgs) < 2 {
		return errors.New("compact: missing index")
	}
	index, err := strconv.ParseUint(d.CmdArgs[1].Key, 10, 64)
	if err != nil {
		return err
	}
	return env.Compact(idx, index)
}

// Compact discards the log of the node at index idx up to and including
// newFirstIndex.
//
// As with MemoryStorage.Compact, the entry at newFirstIndex itself is
// discarded too (its term is kept), so the log then starts right after it.
func (env *InteractionEnv) Compact(idx int, newFirstIndex uint64) error {
	n, err := env.node(idx)
	if err != nil {
		return err
	}
	if err := n.Storage.Compact(newFirstIndex); err != nil {
		return err
	}
	return env.RaftLog(idx)
}
