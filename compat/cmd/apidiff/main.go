// Command apidiff prints how raftkit's packages differ in exported API from
// etcd/raft v3.6's packages of the same names.
//
// Usage, from the compat module:
//
//	go run ./cmd/apidiff [-v] [pkg ...]
//
// Packages are named by their path inside the module ("raftpb", "quorum",
// "tracker", "confchange", "rafttest"); "raft" names the root package. With
// no arguments every package of etcd/raft's public API is compared. -v also
// lists the API that only raftkit has. The exit status is 1 when any
// difference was found or a package could not be loaded.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/raftkit/raft/compat/apicheck"
)

// allPackages lists etcd/raft v3.6's public packages.
var allPackages = []string{"raftpb", "quorum", "tracker", "confchange", apicheck.Root, "rafttest"}

func main() {
	verbose := flag.Bool("v", false, "also list exported API that only raftkit has")
	dir := flag.String("C", ".", "a directory inside the compat module")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: apidiff [-v] [-C dir] [pkg ...]\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	names := flag.Args()
	if len(names) == 0 {
		names = allPackages
	}
	results, err := apicheck.Check(*dir, names...)
	if err != nil {
		fmt.Fprintln(os.Stderr, "apidiff:", err)
		os.Exit(2)
	}
	failed := false
	for _, r := range results {
		if r.Err != nil {
			failed = true
			fmt.Printf("%s: cannot compare: %v\n\n", r.Name, r.Err)
			continue
		}
		if !r.Report.OK() {
			failed = true
		}
		fmt.Print(r.Report)
		if *verbose {
			for _, x := range r.Report.Extras {
				fmt.Printf("  (only ours) %s\n", x)
			}
		}
		fmt.Println()
	}
	if failed {
		os.Exit(1)
	}
}
