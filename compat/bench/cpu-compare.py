#!/usr/bin/env python3
"""CPU-time comparison of compat/bench test binaries, for a loaded machine.

Wall-clock ns/op swings several-fold when other jobs compete for the cores;
the CPU time a benchmark process spends (user + system, all its threads,
GC included) for a fixed number of iterations moves far less. This runs
each benchmark of the comparison set with a fixed iteration count on every
side, rotating the order each round, and prints the median CPU ns per op,
the ratios and their geometric means.

Usage: compat/bench/cpu-compare.py [rounds=5] [sides=old,new,etcd] [filter]
  BENCH_BIN (default /tmp/logbench) holds one test binary per side, named
  <side>.test, e.g.
    go test -c -o $BENCH_BIN/new.test ./compat/bench
    go test -c -tags etcdraft -o $BENCH_BIN/etcd.test ./compat/bench
  and old.test built the same way from an earlier tree (git archive).
  filter: comma-separated substrings of benchmark names to keep; without
  it, the comparison set (Durable excluded, as in bench-compare.sh).
"""
import resource, subprocess, sys, statistics, math, os
bindir = os.environ.get('BENCH_BIN', '/tmp/logbench')
rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
sides = sys.argv[2].split(',') if len(sys.argv) > 2 else ['old', 'new', 'etcd']
benches = [
 ('Propose/voters=1/batch=1', 300000), ('Propose/voters=1/batch=64', 400000),
 ('Cluster/voters=3/batch=1', 60000), ('Cluster/voters=3/batch=64', 80000),
 ('NodePropose', 60000), ('FollowerMsgApp/batch=1', 300000), ('FollowerMsgApp/batch=64', 600000),
 ('ReadIndex/voters=1', 1000000), ('ReadIndex/voters=3', 80000),
 ('Status/full', 300000), ('Status/basic', 200000000),
 ('Durable/voters=3/batch=1', 20000), ('Durable/voters=3/batch=64', 100000),
]
if len(sys.argv) > 3:
    benches = [b for b in benches if any(p in b[0] for p in sys.argv[3].split(','))]
else:
    benches = [b for b in benches if not b[0].startswith('Durable')]
def pat(name):
    parts = name.split('/', 1)
    p = '^Benchmark%s$' % parts[0]
    if len(parts) > 1:
        p += '/^' + parts[1].replace('/', '$/^') + '$'
    return p
res = {(b, s): [] for b, _ in benches for s in sides}
for r in range(rounds):
    for b, n in benches:
        order = sides[r % len(sides):] + sides[:r % len(sides)]
        for s in order:
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            subprocess.run(['nice', os.path.join(bindir, s + '.test'), '-test.run', '^$', '-test.bench', pat(b),
                            '-test.benchtime', '%dx' % n, '-test.count', '1'], stdout=subprocess.DEVNULL, check=True)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
            res[(b, s)].append(cpu / n * 1e9)
    print('round', r + 1, file=sys.stderr)
# Ratios: every side against the last one (etcd by convention), and every
# later side against the first one (e.g. new/old).
pairs = [(a, sides[-1]) for a in sides[:-1]] + [(a, sides[0]) for a in sides[1:-1]]
print('%-28s' % 'ns CPU/op (median)' + ''.join('%10s' % s for s in sides) + ''.join('%11s' % ('%s/%s' % p) for p in pairs))
geo = {p: [] for p in pairs}
for b, _ in benches:
    med = {s: statistics.median(res[(b, s)]) for s in sides}
    line = '%-28s' % b + ''.join('%10.1f' % med[s] for s in sides)
    for a, c in pairs:
        q = med[a] / med[c]
        geo[(a, c)].append(math.log(q))
        line += '%11.3f' % q
    print(line)
print('%-28s' % 'geomean' + ' ' * 10 * len(sides) + ''.join('%11.3f' % math.exp(sum(geo[p]) / len(geo[p])) for p in pairs))
