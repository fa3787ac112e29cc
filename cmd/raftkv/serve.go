package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/raftkit/raft/kvservice"
)

// defaultMaxValueSize is kvservice's default request body limit.
const defaultMaxValueSize = 1 << 20

// maxMaxValueSize keeps one entry, with a batch of others, well under the
// transport's 16 MiB frame limit.
const maxMaxValueSize = 8 << 20

func runServe(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	var (
		id            = fs.Uint64("id", 0, "this member's raft ID (non-zero)")
		clusterID     = fs.String("cluster-id", "", "cluster ID, hex (required)")
		dir           = fs.String("dir", "", "data directory (required)")
		peerAddr      = fs.String("peer-addr", "", "raft transport listen address host:port")
		httpAddr      = fs.String("http-addr", "", "HTTP API listen address host:port")
		initial       = fs.String("initial-cluster", "", "members of a new cluster: id=peerAddr/httpAddr,...")
		join          = fs.String("join", "", "existing members to contact when added at runtime: id=peerAddr/httpAddr,...")
		snapCount     = fs.Uint64("snapshot-count", 10000, "applied entries between state machine snapshots")
		catchUp       = fs.Uint64("catch-up-entries", 1000, "log entries kept before a snapshot for lagging followers")
		tick          = fs.Duration("tick", 100*time.Millisecond, "raft tick interval")
		electionTicks = fs.Int("election-ticks", 10, "ticks without a leader before an election")
		reqTimeout    = fs.Duration("request-timeout", 5*time.Second, "how long a request waits for its outcome")
		logLevel      = fs.String("log-level", "info", "debug, info, warn or error")
		maxValue      = fs.Int64("max-value-size", defaultMaxValueSize, "largest request body in bytes, so a value plus its JSON framing (~20 bytes more)")
	)
	_ = fs.Parse(args)
	if *maxValue <= 0 || *maxValue > maxMaxValueSize {
		return fmt.Errorf("--max-value-size %d: want 1..%d (one value must fit a peer message)", *maxValue, maxMaxValueSize)
	}
	if *clusterID == "" {
		return errors.New("--cluster-id is required: the hex ID every member of the cluster shares, e.g. --cluster-id 7261667463")
	}
	cid, err := strconv.ParseUint(strings.TrimPrefix(*clusterID, "0x"), 16, 64)
	if err != nil {
		return fmt.Errorf("--cluster-id: %q is not a hex number", *clusterID)
	}
	initialMembers, err := kvservice.ParseMembers(*initial)
	if err != nil {
		return fmt.Errorf("--initial-cluster: %w", err)
	}
	joinMembers, err := kvservice.ParseMembers(*join)
	if err != nil {
		return fmt.Errorf("--join: %w", err)
	}
	lg, err := newLogger(*logLevel)
	if err != nil {
		return err
	}
	defer func() { _ = lg.Sync() }()
	srv, err := kvservice.New(kvservice.Config{
		ID: *id, ClusterID: cid, Dir: *dir, PeerAddr: *peerAddr, HTTPAddr: *httpAddr,
		InitialCluster: initialMembers, Join: joinMembers,
		SnapshotCount: *snapCount, CatchUpEntries: *catchUp,
		TickInterval: *tick, ElectionTicks: *electionTicks, RequestTimeout: *reqTimeout,
		MaxRequestBytes: *maxValue, Logger: lg,
	})
	if err != nil {
		return err
	}
	sigc := make(chan os.Signal, 1)
	signal.Notify(sigc, syscall.SIGINT, syscall.SIGTERM)
	select {
	case sig := <-sigc:
		lg.Info("signal received; stopping", zap.String("signal", sig.String()))
		srv.Stop()
		return nil
	case <-srv.Done():
		if err := srv.Err(); err != nil && !errors.Is(err, kvservice.ErrRemoved) {
			return err
		}
		return nil
	}
}

// newLogger builds the JSON logger the members write to stderr.
func newLogger(level string) (*zap.Logger, error) {
	var lvl zapcore.Level
	if err := lvl.Set(level); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	cfg := zap.NewProductionConfig()
	cfg.Level = zap.NewAtomicLevelAt(lvl)
	cfg.Sampling = nil
	cfg.EncoderConfig.EncodeTime = zapcore.ISO8601TimeEncoder
	return cfg.Build()
}
