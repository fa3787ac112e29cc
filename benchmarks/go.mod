module github.com/raftkit/raft/benchmarks

go 1.24

require (
	github.com/raftkit/raft v0.0.0
	github.com/raftkit/raft/benchmarks/shared v0.0.0
)

require (
	github.com/gogo/protobuf v1.3.2 // indirect
	github.com/golang/protobuf v1.5.4 // indirect
	go.uber.org/multierr v1.10.0 // indirect
	go.uber.org/zap v1.28.0 // indirect
	google.golang.org/protobuf v1.33.0 // indirect
)

replace (
	github.com/raftkit/raft => ../
	github.com/raftkit/raft/benchmarks/shared => ./shared
)
