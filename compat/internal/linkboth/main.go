// Command linkboth links etcd's raftpb and raftkit's into one program and
// prints "ok" if that program starts. An application that moves to raftkit
// while a dependency still uses etcd/raft ends up in this situation.
package main

import (
	"fmt"

	ours "github.com/raftkit/raft/raftpb"
	etcd "go.etcd.io/raft/v3/raftpb"
)

func main() {
	// Use both so that neither import is only there for its init.
	if ours.MsgHup.String() != etcd.MsgHup.String() {
		fmt.Println("MsgHup names differ")
		return
	}
	fmt.Println("ok")
}
