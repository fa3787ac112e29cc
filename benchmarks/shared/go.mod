module github.com/raftkit/raft/benchmarks/shared

go 1.24
