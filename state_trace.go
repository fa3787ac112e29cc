package raft

// StateTraceDeployed reports whether this build emits state-machine traces
// (the with_tla build tag of etcd/raft). raftkit has no tracing build, so it
// is always false.
const StateTraceDeployed = false

// TraceLogger receives state-machine trace events in tracing builds. In
// this build it is an empty placeholder, kept so that Config has the same
// fields as etcd/raft's.
type TraceLogger interface{}

// TracingEvent is a state-machine trace event of tracing builds; empty here.
type TracingEvent struct{}
