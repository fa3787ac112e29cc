package multiraft

import (
	"errors"
	"fmt"
	"math/rand"
	"sync"

	"github.com/raftkit/raft"
)

// GroupID names a Raft group. It is unique within a cluster of hosts; zero
// is not a valid group ID.
type GroupID uint64

// HostID names a host (a process hosting groups). Inside every group a
// host's replica has the host's ID as its raft ID, so a host holds at most
// one replica of each group and a message's To field names the host to send
// it to. Zero is not a valid host ID.
type HostID = uint64

// Errors returned by Host methods; compare them with errors.Is.
var (
	// ErrClosed: the host was closed, or stopped after a storage failure.
	ErrClosed = errors.New("multiraft: host closed")
	// ErrGroupExists: CreateGroup for a group the host already runs.
	ErrGroupExists = errors.New("multiraft: group exists")
	// ErrNoGroup: the host runs no group with that ID.
	ErrNoGroup = errors.New("multiraft: no such group")
	// ErrInvalidConfig: a HostConfig or GroupConfig failed validation.
	ErrInvalidConfig = errors.New("multiraft: invalid config")
)

// quietLogger drops raft's log lines (thousands of groups would drown any
// log) but keeps Panic and Fatal fatal.
type quietLogger struct{}

func newQuietLogger() quietLogger { return quietLogger{} }

// seededJitter draws the random part of every group's election timeouts
// from one seeded source, so that a seeded host elects deterministically;
// it is installed on each RawNode through internal/knobs.
type seededJitter struct {
	mu  sync.Mutex
	rng *rand.Rand
}

func newSeededJitter(seed int64) *seededJitter {
	return &seededJitter{rng: rand.New(rand.NewSource(seed))}
}

// draw returns a value in [0, n).
func (j *seededJitter) draw(n int) int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.rng.Intn(n)
}

var _ raft.Logger = quietLogger{}

func (quietLogger) Debug(...interface{})              {}
func (quietLogger) Debugf(string, ...interface{})     {}
func (quietLogger) Error(...interface{})              {}
func (quietLogger) Errorf(string, ...interface{})     {}
func (quietLogger) Info(...interface{})               {}
func (quietLogger) Infof(string, ...interface{})      {}
func (quietLogger) Warning(...interface{})            {}
func (quietLogger) Warningf(string, ...interface{})   {}
func (quietLogger) Fatal(v ...interface{})            { panic(fmt.Sprint(v...)) }
func (quietLogger) Fatalf(f string, v ...interface{}) { panic(fmt.Sprintf(f, v...)) }
func (quietLogger) Panic(v ...interface{})            { panic(fmt.Sprint(v...)) }
func (quietLogger) Panicf(f string, v ...interface{}) { panic(fmt.Sprintf(f, v...)) }
