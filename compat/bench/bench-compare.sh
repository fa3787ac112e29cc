#!/usr/bin/env bash
# Runs compat/bench against etcd/raft v3.6.0 and against raftkit, interleaved
# (A B, then B A, ...) so that drift in machine load hits both sides alike,
# and prints per-benchmark medians, the ratios raftkit/etcd and their
# geometric means (benchratio), then benchstat's view if it can be fetched.
#
# Usage: compat/bench/bench-compare.sh [rounds] [bench regexp] [benchtime]
#   rounds     pairs of runs, at least 10 for the acceptance numbers (default 10)
#   regexp     -bench pattern (default: the comparison set, Scale excluded)
#   benchtime  -benchtime per benchmark and run (default 200ms)
# Environment: OUT=dir keeps the raw outputs there (default a temp dir).
set -euo pipefail

rounds=${1:-10}
pattern=${2:-'^Benchmark(Propose|Cluster|NodePropose|FollowerMsgApp|ReadIndex|Status)$'}
benchtime=${3:-200ms}
here=$(cd "$(dirname "$0")" && pwd)
out=${OUT:-$(mktemp -d)}
mkdir -p "$out"

cd "$here"
# One binary per side, built once: the runs then measure nothing but the
# benchmarks.
go test -c -o "$out/raftkit.test" .
go test -c -tags etcdraft -o "$out/etcd.test" .
go build -o "$out/benchratio" ./benchratio
: >"$out/raftkit.txt"
: >"$out/etcd.txt"

run() { # side
	"$out/$1.test" -test.run '^$' -test.bench "$pattern" -test.benchmem \
		-test.benchtime "$benchtime" -test.count 1 >>"$out/$1.txt"
}
for ((i = 0; i < rounds; i++)); do
	if ((i % 2 == 0)); then run etcd; run raftkit; else run raftkit; run etcd; fi
	echo "round $((i + 1))/$rounds done" >&2
done

echo "raw outputs: $out"
"$out/benchratio" -skip Scale "$out/etcd.txt" "$out/raftkit.txt"
if [[ -z ${NO_BENCHSTAT:-} ]]; then
	echo
	(cd "$out" && go run golang.org/x/perf/cmd/benchstat@latest etcd.txt raftkit.txt) ||
		echo "(benchstat unavailable; the table above is complete)"
fi
