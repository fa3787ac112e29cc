#!/usr/bin/env python3
# Interleaved A/B of bench binaries with crossbench's row arguments, on a
# port range of its own (crossbench's fixed 24000-24390 collided with another
# helper's run). Prints crossbench-style progress lines.
import json,subprocess,sys,itertools
binDir='/tmp/walrec/bin'
libs=sys.argv[1].split(',')
rows=sys.argv[2].split(',')
rounds=int(sys.argv[3])
dur=sys.argv[4] if len(sys.argv)>4 else '4s'
seq=0
for r in range(rounds):
    for row in rows:
        _,p,size=row.split('-')
        p=int(p[1:]); size={'128B':128,'4KiB':4096}[size]
        for k in range(len(libs)):
            lib=libs[(k+r)%len(libs)]
            seq+=1
            port=31000+(seq%50)*10
            args=[f'{binDir}/bench-{lib}','-port',str(port),'-mode','throughput','-durable=true','-proposers',str(p),'-payload',str(size),'-duration',dur,'-warmup','1s']
            out=subprocess.run(['nice','-n','5']+args,capture_output=True,text=True)
            res=None
            for line in out.stdout.splitlines()+out.stderr.splitlines():
                if line.startswith('RESULT '): res=json.loads(line[7:])
            if res is None:
                print(f"round {r+1} {row} {lib}: failed: {out.stderr.strip()[-200:]}",flush=True); continue
            print(f"round {r+1} {row:16s} {lib:9s} {res['commits_per_sec']:.0f}/s mean {res['mean_ms']:.2f} p50 {res['p50_ms']:.2f} p99 {res['p99_ms']:.2f} p99.9 {res['p999_ms']:.2f} ms; cpu {res.get('cpu_us_per_commit',0):.1f} us, runq {res.get('runq_us_per_commit',0):.1f} us",flush=True)
