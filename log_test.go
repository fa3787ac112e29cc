package raft

import (
	pb "github.com/raftkit/raft/raftpb"
)

// sized builds entries [from, to] of the given term whose payloads are n
// bytes each.
func sized(term, from, to uint64, n int) []pb.Entry {
	var out []pb.Entry
	for i := from; i <= to; i++ {
		out = append(out, pb.Entry{Term: term, Index: i, Data: make([]byte, n)})
	}
	return out
}
