#!/usr/bin/env bash
# Regenerates raftpb/raft.pb.go from raftpb/raft.proto. Needs only Go.
#
# Pinned inputs, both in the tools module (tools/go.mod), so that they stay out
# of the module graph of the library's users:
#   - the parser: tools/protoparse, a small front end on
#     github.com/bufbuild/protocompile that does protoc's part (parse, build the
#     CodeGeneratorRequest, run the plugin). The plugin, not the parser, decides
#     the Go output.
#   - the plugin: gogo/protobuf's protoc-gen-gofast, pinned by the tool
#     directive in tools/go.mod. gofast imports github.com/golang/protobuf/proto,
#     as etcd/raft's generated file does, so the XXX_ methods have the same
#     signatures.
#
# With --check, the script generates into a temporary directory and fails if
# the committed file differs.
set -euo pipefail
cd "$(dirname "$0")/.."

check=false
if [[ "${1:-}" == "--check" ]]; then check=true; fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

go -C tools build -o "$work/protoparse" ./protoparse
go -C tools build -o "$work/protoc-gen-gofast" github.com/gogo/protobuf/protoc-gen-gofast
gogo=$(go -C tools list -m -f '{{.Dir}}' github.com/gogo/protobuf)

mkdir -p "$work/out"
"$work/protoparse" \
  -plugin "$work/protoc-gen-gofast" \
  -out "$work/out" \
  -I raftpb -I "$gogo" -I "$gogo/protobuf" \
  raft.proto
gofmt -s -w "$work/out/raft.pb.go"

if $check; then
  if ! diff -u raftpb/raft.pb.go "$work/out/raft.pb.go"; then
    echo "raftpb/raft.pb.go is stale: run scripts/genproto.sh and commit the result" >&2
    exit 1
  fi
  echo "raftpb/raft.pb.go is up to date"
else
  cp "$work/out/raft.pb.go" raftpb/raft.pb.go
  echo "wrote raftpb/raft.pb.go"
fi
