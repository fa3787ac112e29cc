package rafttest

import (
	"fmt"
	"math"
	"strings"

	"github.com/raftkit/raft"
	pb "github.com/raftkit/raft/raftpb"
)

// InteractionOpts configures a new InteractionEnv.
type InteractionOpts struct {
	// OnConfig, if set, may adjust each node's Config just before the node
	// is created. It must not change the ID or set a Logger.
	OnConfig func(*raft.Config)

	// SetRandomizedElectionTimeout overrides a node's randomized election
	// timeout (in ticks) until the node next resets it. The raft package
	// keeps that value private, so its tests pass a hook in here; without
	// one, set-randomized-election-timeout reports an error.
	SetRandomizedElectionTimeout func(node *raft.RawNode, timeout int)
}

// Node is one raft node of an InteractionEnv, with its storage and the work
// queued for its storage threads.
type Node struct {
	*raft.RawNode
	Storage

	// Config is the configuration the node was created with.
	Config *raft.Config
	// AppendWork queues the MsgStorageAppend messages the node's append
	// thread has yet to process (asynchronous storage writes only).
	AppendWork []pb.Message
	// ApplyWork queues the MsgStorageApply messages the node's apply thread
	// has yet to process (asynchronous storage writes only).
	ApplyWork []pb.Message
	// History holds the node's applied states, oldest first; it is never
	// empty. Its last element is what the node's Storage returns as its
	// snapshot.
	History []pb.Snapshot
}

// InteractionEnv drives a group of raft nodes step by step, under the control
// of a scenario: nothing happens unless a directive asks for it.
type InteractionEnv struct {
	// Options are the options the environment was created with.
	Options *InteractionOpts
	// Nodes holds the group's members; node ID i lives at Nodes[i-1].
	Nodes []Node
	// Messages holds the messages in flight, in the order they were sent.
	Messages []pb.Message

	// Output collects the output of the directive being handled, including
	// the nodes' log output, which goes through it too.
	Output *RedirectLogger
}

// NewInteractionEnv returns an environment with no nodes yet; opts may be
// nil.
func NewInteractionEnv(opts *InteractionOpts) *InteractionEnv {
	env := &InteractionEnv{Options: opts, Output: &RedirectLogger{Builder: new(strings.Builder)}}
	if env.Options == nil {
		env.Options = new(InteractionOpts)
	}
	return env
}

// Storage is what an InteractionEnv needs of a node's storage: raft.Storage,
// which the node reads, plus the writes that the environment performs on
// the node's behalf while handling its Readys.
type Storage interface {
	raft.Storage
	SetHardState(state pb.HardState) error
	ApplySnapshot(pb.Snapshot) error
	Compact(newFirstIndex uint64) error
	Append([]pb.Entry) error
}

// nested runs f with the output redirected to a fresh buffer, then appends
// what f wrote to the real buffer with every line indented by two spaces.
// The logger is swapped underneath rather than replaced, so log lines the
// nodes emit while f runs are indented along with everything else.
func (env *InteractionEnv) nested(f func()) {
	outer := env.Output.Builder
	inner := &strings.Builder{}
	env.Output.Builder = inner
	defer func() {
		env.Output.Builder = outer
		text := strings.TrimSuffix(inner.String(), "\n")
		if inner.Len() == 0 {
			return
		}
		for _, line := range strings.Split(text, "\n") {
			outer.WriteString("  " + line + "\n")
		}
	}()
	f()
}

// node returns the node at index idx, or an error naming the missing ID.
func (env *InteractionEnv) node(idx int) (*Node, error) {
	if idx < 0 || idx >= len(env.Nodes) {
		return nil, fmt.Errorf("node %d does not exist", idx+1)
	}
	return &env.Nodes[idx], nil
}

// defaultConfig is the template every added node starts from: short
// timeouts so that scenarios stay brief, and no flow-control limits unless
// a scenario asks for them. ID and Storage are filled in per node.
func defaultConfig() raft.Config {
	return raft.Config{
		ElectionTick:    3,
		HeartbeatTick:   1,
		MaxSizePerMsg:   math.MaxUint64,
		MaxInflightMsgs: math.MaxInt32,
	}
}

// formatData renders a normal entry's payload in test output.
func formatData(data []byte) string { return fmt.Sprintf("%q", data) }
