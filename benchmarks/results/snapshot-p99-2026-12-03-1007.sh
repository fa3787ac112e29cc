#!/bin/bash
# p99 at fsync-p256-128B with the usual compaction (every 10000) and without
cd /tmp/xb5ab
for i in 1 2 3; do
  for lib in raftkit etcd36; do
    for se in 10000 1000000000; do
      out=$(nice -n 5 ./bench-$lib -durable -proposers 256 -payload 128 -duration 4s -warmup 1s -snapshot-every $se 2>/dev/null | grep RESULT)
      echo "$i $lib snap=$se $(echo "$out" | grep -o '"commits_per_sec":[0-9.]*\|"p50_ms":[0-9.]*\|"p99_ms":[0-9.]*\|"p999_ms":[0-9.]*\|"runq_us_per_commit":[0-9.]*' | tr '\n' ' ')"
    done
  done
done
