#!/usr/bin/env bash
# Regenerates raftpb/raft.pb.go from raftpb/raft.proto.
#
# Pinned inputs: protoc comes from Debian's protobuf-compiler package (the
# plugin, not protoc, decides the Go output; protoc only parses), and the
# gogo/protobuf plugin protoc-gen-gofast is the version go.mod pins through
# its tool directive. gofast imports github.com/golang/protobuf/proto, as
# etcd/raft's generated file does, so the XXX_ methods have the same
# signatures.
#
# With --check, the script generates into a temporary directory and fails if
# the committed file differs.
set -euo pipefail
cd "$(dirname "$0")/.."

check=false
if [[ "${1:-}" == "--check" ]]; then check=true; fi

command -v protoc >/dev/null || { echo "protoc not found: apt-get install -y protobuf-compiler" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

go build -o "$work/protoc-gen-gofast" github.com/gogo/protobuf/protoc-gen-gofast
gogo=$(go list -m -f '{{.Dir}}' github.com/gogo/protobuf)

mkdir -p "$work/out"
protoc \
  --plugin=protoc-gen-gofast="$work/protoc-gen-gofast" \
  --gofast_out="$work/out" \
  -I raftpb -I "$gogo" -I "$gogo/protobuf" \
  raftpb/raft.proto
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
