// Command raftkv is a replicated key-value store built on raftkit: raft.Node
// for consensus, package wal for durable storage and package transport
// between the members, with an HTTP API (see kvservice.Server.Handler).
//
// Usage:
//
//	raftkv serve   --id 1 --cluster-id 7261 --dir DIR --peer-addr H:P --http-addr H:P \
//	               (--initial-cluster 1=PEER/HTTP,2=... | --join 1=PEER/HTTP,...)
//	raftkv cluster --dir DIR      start (or resume) a 3-member cluster on 127.0.0.1
//	raftkv demo    --dir DIR      the same, then a leader crash and recovery, narrated
//	raftkv load    --dir DIR      write load on a fresh 3-member cluster; prints writes/s, p50, p99
//	raftkv idle    --groups N     CPU and memory of 3 members hosting N idle groups (multiraft)
package main

import (
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	var err error
	switch cmd, args := os.Args[1], os.Args[2:]; cmd {
	case "serve":
		err = runServe(args)
	case "cluster":
		err = runCluster(args)
	case "demo":
		err = runDemo(args)
	case "load":
		err = runLoad(args)
	case "compare":
		err = runCompare(args)
	case "idle":
		err = runIdle(args)
	case "idle-member": // hidden: a member process of "idle"
		err = runIdleMember(args)
	case "help", "-h", "--help":
		usage()
		return
	default:
		fmt.Fprintf(os.Stderr, "raftkv: unknown command %q\n", cmd)
		usage()
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "raftkv:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprint(os.Stderr, `usage: raftkv <command> [flags]

commands:
  serve    run one member (see raftkv serve -h)
  cluster  start or resume a 3-member cluster on 127.0.0.1, data under --dir
  demo     start a cluster, write keys, kill the leader, show recovery
  load     measure writes/s and latency on a fresh 3-member cluster
  compare  run load for several shard counts in interleaved rounds, with ratios
  idle     measure CPU and memory of 3 members hosting many idle groups
`)
}
