package rafttest

import (
	"errors"
	"strconv"
	"testing"

	"github.com/cockroachdb/datadriven"
)

// commandHandler runs one directive. A returned error is part of the
// directive's output; malformed arguments fail the test through t.
type commandHandler func(env *InteractionEnv, t *testing.T, d datadriven.TestData) error

// commands maps every directive to its handler; each handler lives in its
// own file, named after the directive.
var commands = map[string]commandHandler{
	// _breakpoint does nothing: it is a place to set a debugger
	// breakpoint on when a long scenario misbehaves.
	"_breakpoint":                     func(*InteractionEnv, *testing.T, datadriven.TestData) error { return nil },
	"add-nodes":                       cmdAddNodes,
	"campaign":                        cmdCampaign,
	"compact":                         cmdCompact,
	"deliver-msgs":                    cmdDeliverMsgs,
	"forget-leader":                   cmdForgetLeader,
	"log-level":                       cmdLogLevel,
	"process-append-thread":           cmdProcessAppendThread,
	"process-apply-thread":            cmdProcessApplyThread,
	"process-ready":                   cmdProcessReady,
	"propose":                         cmdPropose,
	"propose-conf-change":             cmdProposeConfChange,
	"raft-log":                        cmdRaftLog,
	"raft-state":                      cmdRaftState,
	"read-index":                      cmdReadIndex,
	"report-snapshot":                 cmdReportSnapshot,
	"report-unreachable":              cmdReportUnreachable,
	"restart":                         cmdRestart,
	"send-snapshot":                   cmdSendSnapshot,
	"set-randomized-election-timeout": cmdSetRandomizedElectionTimeout,
	"stabilize":                       cmdStabilize,
	"status":                          cmdStatus,
	"tick-election":                   cmdTickElection,
	"tick-heartbeat":                  cmdTickHeartbeat,
	"transfer-leadership":             cmdTransferLeadership,
}

// Handle carries out one datadriven directive and returns what it printed.
// A malformed directive fails t; an error from a node or its storage is part
// of the output, so that scenarios can show it.
//
// The returned output is "ok" when the directive printed nothing. At the
// NONE log level only an error, if any, is returned.
func (env *InteractionEnv) Handle(t *testing.T, d datadriven.TestData) string {
	env.Output.Reset()
	var err error
	if h, ok := commands[d.Cmd]; ok {
		err = h(env, t, d)
	} else {
		err = errors.New("unknown command")
	}
	if err != nil {
		if env.Output.Quiet() {
			return err.Error()
		}
		env.Output.WriteString(err.Error())
	}
	if env.Output.Len() == 0 {
		return "ok"
	}
	return env.Output.String()
}

// firstArgInt parses the directive's first argument, which must be a bare
// integer.
func firstArgInt(t *testing.T, d datadriven.TestData) int {
	t.Helper()
	if len(d.CmdArgs) == 0 {
		d.Fatalf(t, "%s: missing argument", d.Cmd)
	}
	n, err := strconv.Atoi(d.CmdArgs[0].Key)
	if err != nil {
		d.Fatalf(t, "%s: %v", d.Cmd, err)
	}
	return n
}

// firstArgNode parses the directive's first argument as a node ID and
// returns the index of that node in env.Nodes, failing the test if there
// is no such node.
func (env *InteractionEnv) firstArgNode(t *testing.T, d datadriven.TestData) int {
	t.Helper()
	idx := firstArgInt(t, d) - 1
	if _, err := env.node(idx); err != nil {
		d.Fatalf(t, "%s: %v", d.Cmd, err)
	}
	return idx
}

// bareNodeArgs returns the indexes (ID-1) of the nodes named by the
// directive's bare arguments, in argument order; key=value arguments are
// skipped. Every named node must exist.
func (env *InteractionEnv) bareNodeArgs(t *testing.T, d datadriven.TestData) []int {
	t.Helper()
	var idxs []int
	for _, arg := range d.CmdArgs {
		if len(arg.Vals) > 0 {
			continue
		}
		id, err := strconv.Atoi(arg.Key)
		if err != nil {
			d.Fatalf(t, "%s: %v", d.Cmd, err)
		}
		if _, err := env.node(id - 1); err != nil {
			d.Fatalf(t, "%s: %v", d.Cmd, err)
		}
		idxs = append(idxs, id-1)
	}
	return idxs
}

// forEachNode runs f for every node in idxs. With more than one node, each
// node's output goes under a header made by header and is indented. The
// first error stops the loop.
func (env *InteractionEnv) forEachNode(idxs []int, header string, f func(idx int) error) error {
	for _, idx := range idxs {
		if len(idxs) == 1 {
			return f(idx)
		}
		env.Output.WriteString(nodeHeader(idx, header))
		var err error
		env.nested(func() { err = f(idx) })
		if err != nil {
			return err
		}
	}
	return nil
}

// nodeHeader renders a "> ID what" header line for node index idx.
func nodeHeader(idx int, what string) string {
	return "> " + strconv.Itoa(idx+1) + " " + what + "\n"
}
