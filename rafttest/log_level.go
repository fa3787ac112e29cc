package rafttest

import (
	"fmt"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"
)

// cmdLogLevel: log-level debug|info|warn|error|fatal|none — lasts until
// the next log-level directive.
func cmdLogLevel(env *InteractionEnv, t *testing.T, d datadriven.TestData) error {
	if len(d.CmdArgs) == 0 {
		d.Fatalf(t, "log-level: missing level")
	}
	return env.LogLevel(d.CmdArgs[0].Key)
}

// LogLevel sets the level below which log lines are discarded. NONE
// silences all output except errors. Names are case-insensitive.
func (env *InteractionEnv) LogLevel(name string) error {
	for lvl, s := range levelNames {
		if strings.EqualFold(s, name) {
			env.Output.Lvl = lvl
			return nil
		}
	}
	return fmt.Errorf("log levels must be either of %v", levelNames)
}
