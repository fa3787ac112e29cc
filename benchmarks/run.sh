#!/usr/bin/env bash
# Cross-library Raft benchmark (README.md in this directory): builds one
# binary per library, then runs every row against each, interleaved.
#   bash benchmarks/run.sh           # full set (about 30 minutes on 2 cores)
#   bash benchmarks/run.sh --quick   # reduced set, under 5 minutes
# Extra arguments go to the driver (go run ./cmd/crossbench -h).
set -euo pipefail
cd "$(dirname "$0")"

args=()
for a in "$@"; do
  case "$a" in
    --quick) args+=(-quick) ;;
    *) args+=("$a") ;;
  esac
done

mkdir -p bin
go build -o bin/bench-raftkit ./cmd/bench-raftkit
go build -o bin/bench-hashicorp ./cmd/bench-hashicorp
go build -o bin/crossbench ./cmd/crossbench
(cd etcd36 && go build -o ../bin/bench-etcd36 .)
(cd etcd37 && go build -o ../bin/bench-etcd37 .)
exec ./bin/crossbench -bin bin "${args[@]}"
