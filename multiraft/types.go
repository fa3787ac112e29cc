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
// log) but keeps Panic and Fatal fatal, and draws the random part of every
// election timeout from a seeded source: raft looks for an ElectionJitter
// method on its Logger, so that a seeded host elects deterministically.
type quietLogger struct {
	mu  *sync.Mutex
	rng *rand.Rand
}

func newQuietLogger(seed int64) quietLogger {
	return quietLogger{mu: new(sync.Mutex), rng: rand.New(rand.NewSource(seed))}
}

// ElectionJitter returns a value in [0, n) from the host's seeded source.
func (l quietLogger) ElectionJitter(n int) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.rng.Intn(n)
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
