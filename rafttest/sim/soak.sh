#!/bin/sh
# soak.sh runs TestSimulation over a range of seeds in parallel shards, for
# each workload and read mode asked for, writes each shard's output to a
# file, and sums the shards' "summary:" figures.
#
#   rafttest/sim/soak.sh                      # 100000 seeds x 5000 steps, kv and counter, mixed reads
#   SEEDS=400 SHARDS=2 rafttest/sim/soak.sh   # a small run
#
# Environment (defaults in brackets):
#   SEEDS [100000]  seeds per workload and read mode, from FIRST [1]
#   STEPS [5000]    faulty steps per seed
#   SHARDS [8]      shards per workload and read mode (each takes SEEDS/SHARDS seeds)
#   JOBS [nproc]    shards running at once
#   WORKLOADS ["kv counter"]
#   READS ["mixed"] read modes: mixed draws safe or lease per seed; "safe lease mixed" runs each
#   OUT [soak-out]  directory for the shard outputs and totals.txt
#   FLAGS []        more test flags, e.g. -sim.lockstep
# The exit status is 0 only if every shard passed with violations=0.
set -eu
SEEDS=${SEEDS:-100000}
FIRST=${FIRST:-1}
STEPS=${STEPS:-5000}
SHARDS=${SHARDS:-8}
JOBS=${JOBS:-$(nproc)}
WORKLOADS=${WORKLOADS:-kv counter}
READS=${READS:-mixed}
OUT=${OUT:-soak-out}
FLAGS=${FLAGS:-}

here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
bin="$OUT/sim.test"
(cd "$here" && go test -c -o "$bin" .)

per=$(( (SEEDS + SHARDS - 1) / SHARDS ))
jobs="$OUT/jobs.txt"
: > "$jobs"
for w in $WORKLOADS; do
	for r in $READS; do
		i=0
		while [ "$i" -lt "$SHARDS" ]; do
			first=$(( FIRST + i * per ))
			n=$per
			last=$(( FIRST + SEEDS ))
			[ $(( first + n )) -gt "$last" ] && n=$(( last - first ))
			[ "$n" -gt 0 ] && echo "$w $r $first $n" >> "$jobs"
			i=$(( i + 1 ))
		done
	done
done

# One shard per line of jobs.txt, each to its own file, run in the package
# directory as go test does.
export OUT STEPS FLAGS here bin
xargs -P "$JOBS" -L 1 sh -c 'w=$0 r=$1 first=$2 n=$3
f="$OUT/$w-$r-$first.txt"
(cd "$here" && "$bin" -test.run "TestSimulation\$" -test.v -test.timeout 0 \
	-sim.workload="$w" -sim.reads="$r" -sim.first="$first" -sim.seeds="$n" -sim.steps="$STEPS" $FLAGS) > "$f" 2>&1 \
	&& echo "ok   $w $r seeds $first+$n" || echo "FAIL $w $r seeds $first+$n: see $f"' < "$jobs"

# Sum every key=value of the summary lines, per workload and read mode and in all.
status=0
: > "$OUT/totals.txt"
for w in $WORKLOADS; do
	for r in $READS; do
		files=$(ls "$OUT/$w-$r-"*.txt)
		shards=$(grep -l 'summary:' $files | wc -l)
		want=$(grep -c "^$w $r " "$jobs")
		[ "$shards" -eq "$want" ] || { echo "$w $r: $shards of $want shards reported a summary" >> "$OUT/totals.txt"; status=1; }
		grep -h 'summary:' $files | sed 's/.*summary: //' | awk -v tag="$w reads=$r" '
			{ for (i = 1; i <= NF; i++) { split($i, kv, "="); sum[kv[1]] += kv[2]; if (!(kv[1] in seen)) { seen[kv[1]] = 1; order[++k] = kv[1] } } }
			END { line = "workload=" tag; for (i = 1; i <= k; i++) line = line " " order[i] "=" sum[order[i]]; print line }' >> "$OUT/totals.txt"
	done
done
cat "$OUT/totals.txt"
if grep -q 'violations=[1-9]' "$OUT/totals.txt" || grep -q '^--- FAIL' "$OUT"/*-*.txt; then
	status=1
fi
exit $status
