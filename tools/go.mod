module github.com/raftkit/raft/tools

go 1.24

require (
	github.com/bufbuild/protocompile v0.14.1
	google.golang.org/protobuf v1.34.2
)

require (
	github.com/gogo/protobuf v1.3.2 // indirect
	golang.org/x/sync v0.8.0 // indirect
)

tool github.com/gogo/protobuf/protoc-gen-gofast
