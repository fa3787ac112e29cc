#!/usr/bin/env bash
# The project's test command (README: "Run the tests"). It checks formatting,
# vets, runs every test of the library with the race detector, checks that the
# generated protobuf code is fresh, and runs the etcd/raft compatibility
# module. Needs Go, gcc (for -race) and protoc (for the generated-code check).
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' | grep -v '\.pb\.go$') 2>&1 || true)
if [[ -n "$unformatted" ]]; then
  echo "gofmt would change:"; echo "$unformatted"; exit 1
fi

echo "== go vet"
go vet ./...

echo "== generated code"
bash scripts/genproto.sh --check

echo "== go test -race ./..."
go test -race -count=1 ./...

if [[ -d compat ]]; then
  echo "== compat (against etcd/raft v3.6.0)"
  (cd compat && go vet ./... && go test -count=1 ./...)
fi

if [[ -d benchmarks ]]; then
  # The cross-library benchmark is three modules of its own (etcd server 3.6
  # and 3.7 cannot share one); only vetted here, never run. Its etcd modules
  # need Go 1.26, so older toolchains skip it rather than download one.
  if [[ "$(printf '%s\n' go1.26 "$(go env GOVERSION)" | sort -V | head -1)" == go1.26 ]]; then
    echo "== benchmarks (go vet)"
    for m in benchmarks benchmarks/shared benchmarks/etcd36 benchmarks/etcd37; do
      (cd "$m" && GOTOOLCHAIN=local go vet ./...)
    done
  else
    echo "== benchmarks: skipped (needs Go 1.26)"
  fi
fi
