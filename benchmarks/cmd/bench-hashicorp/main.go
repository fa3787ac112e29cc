// Command bench-hashicorp runs the cross-library workload against
// hashicorp/raft with its recommended production parts: raft-wal for the
// log and stable store (fsync on every append), a file snapshot store, and
// NetworkTransport over TCP with its default pipelining (MaxRPCsInFlight 2).
// With -durable=false it uses InmemStore and InmemSnapshotStore.
package main

import (
	"context"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftwal "github.com/hashicorp/raft-wal"
	"github.com/raftkit/raft/benchmarks/shared"
)

func main() { shared.Main("hashicorp", build) }

// config is the library's defaults with the knobs its documentation names
// for throughput: BatchApplyCh (batch proposals into one log write) and
// MaxAppendEntries at its maximum; the election timing matches the
// etcd-style rows (1 s heartbeat/election timeout, randomized up to 2x).
func config(id string, opts shared.Options) *raft.Config {
	c := raft.DefaultConfig()
	c.LocalID = raft.ServerID(id)
	c.Logger = hclog.NewNullLogger()
	c.HeartbeatTimeout = time.Second
	c.ElectionTimeout = time.Second
	c.LeaderLeaseTimeout = 500 * time.Millisecond
	c.BatchApplyCh = true
	c.MaxAppendEntries = 1024
	c.SnapshotThreshold = opts.SnapshotEvery
	c.TrailingLogs = opts.KeepEntries
	c.SnapshotInterval = time.Second
	return c
}

// fsm counts applied entries; its snapshot is the count.
type fsm struct{ n atomic.Uint64 }

func (f *fsm) Apply(*raft.Log) interface{} { f.n.Add(1); return nil }
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	return snap(f.n.Load()), nil
}
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	var b [8]byte
	if _, err := io.ReadFull(rc, b[:]); err != nil {
		return err
	}
	f.n.Store(binary.LittleEndian.Uint64(b[:]))
	return nil
}

type snap uint64

func (s snap) Persist(sink raft.SnapshotSink) error {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(s))
	if _, err := sink.Write(b[:]); err != nil {
		_ = sink.Cancel()
		return err
	}
	return sink.Close()
}
func (snap) Release() {}

type voter struct {
	r      *raft.Raft
	tr     *raft.NetworkTransport
	closeS func()
	killed atomic.Bool
}

type cluster struct{ voters []*voter }

func build(opts shared.Options) (shared.Cluster, error) {
	var servers []raft.Server
	for i, a := range opts.Addrs {
		servers = append(servers, raft.Server{ID: raft.ServerID(strconv.Itoa(i + 1)), Address: raft.ServerAddress(a)})
	}
	c := &cluster{}
	for i, a := range opts.Addrs {
		v, err := startVoter(strconv.Itoa(i+1), a, filepath.Join(opts.Dir, "n"+strconv.Itoa(i+1)), opts, servers)
		if err != nil {
			c.Close()
			return nil, err
		}
		c.voters = append(c.voters, v)
	}
	return c, nil
}

func startVoter(id, addr, dir string, opts shared.Options, servers []raft.Server) (*voter, error) {
	var (
		logs   raft.LogStore
		stable raft.StableStore
		snaps  raft.SnapshotStore
		closeS = func() {}
	)
	if opts.Durable {
		if err := os.MkdirAll(filepath.Join(dir, "wal"), 0o755); err != nil {
			return nil, err
		}
		w, err := raftwal.Open(filepath.Join(dir, "wal"))
		if err != nil {
			return nil, err
		}
		logs, stable, closeS = w, w, func() { _ = w.Close() }
		fs, err := raft.NewFileSnapshotStoreWithLogger(dir, 1, hclog.NewNullLogger())
		if err != nil {
			return nil, err
		}
		snaps = fs
	} else {
		m := raft.NewInmemStore()
		logs, stable, snaps = m, m, raft.NewInmemSnapshotStore()
	}
	tr, err := raft.NewTCPTransportWithConfig(addr, nil, &raft.NetworkTransportConfig{
		MaxPool: 3, Timeout: 10 * time.Second, Logger: hclog.NewNullLogger()})
	if err != nil {
		return nil, err
	}
	conf := config(id, opts)
	if err := raft.BootstrapCluster(conf, logs, stable, snaps, tr, raft.Configuration{Servers: servers}); err != nil {
		return nil, err
	}
	r, err := raft.NewRaft(conf, &fsm{}, logs, stable, snaps, tr)
	if err != nil {
		return nil, err
	}
	return &voter{r: r, tr: tr, closeS: closeS}, nil
}

func (c *cluster) leader() *voter {
	for _, v := range c.voters {
		if !v.killed.Load() && v.r.State() == raft.Leader {
			return v
		}
	}
	return nil
}

func (c *cluster) Propose(ctx context.Context, data []byte) error {
	v := c.leader()
	if v == nil {
		return shared.ErrNoLeader
	}
	timeout := 10 * time.Second
	if d, ok := ctx.Deadline(); ok {
		timeout = time.Until(d)
	}
	// Error waits until the entry is committed and applied to this FSM.
	return v.r.Apply(data, timeout).Error()
}

func (c *cluster) WaitLeader(ctx context.Context) (int, error) {
	for {
		for i, v := range c.voters {
			if !v.killed.Load() && v.r.State() == raft.Leader {
				return i, nil
			}
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

func (c *cluster) Kill(i int) {
	v := c.voters[i]
	if v.killed.Swap(true) {
		return
	}
	// Shutdown stops replication and heartbeats at once; the wait for its
	// goroutines is not part of the crash.
	f := v.r.Shutdown()
	_ = v.tr.Close()
	go func() { _ = f.Error(); v.closeS() }()
}

func (c *cluster) Close() {
	for _, v := range c.voters {
		if !v.killed.Swap(true) {
			_ = v.r.Shutdown().Error()
			_ = v.tr.Close()
			v.closeS()
		}
	}
}
