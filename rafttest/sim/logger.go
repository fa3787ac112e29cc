package sim

import (
	"fmt"

	"github.com/raftkit/raft"
)

// quietLogger drops raft's log lines, which would dwarf the trace, but
// keeps Fatal and Panic fatal: a node that panics is a finding.
type quietLogger struct{}

var _ raft.Logger = quietLogger{}

func (quietLogger) Debug(...interface{})            {}
func (quietLogger) Debugf(string, ...interface{})   {}
func (quietLogger) Error(...interface{})            {}
func (quietLogger) Errorf(string, ...interface{})   {}
func (quietLogger) Info(...interface{})             {}
func (quietLogger) Infof(string, ...interface{})    {}
func (quietLogger) Warning(...interface{})          {}
func (quietLogger) Warningf(string, ...interface{}) {}
func (quietLogger) Fatal(v ...interface{})          { panic(fmt.Sprint(v...)) }
func (quietLogger) Fatalf(f string, v ...interface{}) {
	panic(fmt.Sprintf(f, v...))
}
func (quietLogger) Panic(v ...interface{}) { panic(fmt.Sprint(v...)) }
func (quietLogger) Panicf(f string, v ...interface{}) {
	panic(fmt.Sprintf(f, v...))
}
