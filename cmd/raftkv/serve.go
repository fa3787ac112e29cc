package main

import (
	"crypto/tls"
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
	"github.com/raftkit/raft/transport"
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
		peerCert      = fs.String("peer-cert", "", "PEM certificate this member presents to its peers (mutual TLS; with --peer-key, --peer-ca)")
		peerKey       = fs.String("peer-key", "", "PEM key of --peer-cert")
		peerCA        = fs.String("peer-ca", "", "PEM CA bundle peers' certificates must chain to")
		httpCert      = fs.String("http-cert", "", "PEM certificate for HTTPS on --http-addr (with --http-key)")
		httpKey       = fs.String("http-key", "", "PEM key of --http-cert")
		tokenFile     = fs.String("token-file", "", "file holding the bearer token the client API requires")
		adminTokFile  = fs.String("admin-token-file", "", "file holding the bearer token the admin endpoints (members, leader) require")
		insecure      = fs.Bool("insecure", false, "allow listening beyond loopback without TLS and tokens")
		promoteLag    = fs.Uint64("learner-promote-lag", 100, "entries a learner may lag the leader by to be promoted to voter")
		maxValue      = fs.Int64("max-value-size", defaultMaxValueSize, "largest request body in bytes, so a value plus its JSON framing (~20 bytes more)")
		shards        = fs.Int("shards", 1, "raft groups the key space is split into, all hosted by one multiraft host per member; every member the same, fixed at creation")
	)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *maxValue <= 0 || *maxValue > maxMaxValueSize {
		return fmt.Errorf("--max-value-size %d: want 1..%d (one value must fit a peer message)", *maxValue, maxMaxValueSize)
	}
	cid, err := parseClusterID(*clusterID)
	if err != nil {
		return err
	}
	initialMembers, err := kvservice.ParseMembers(*initial)
	if err != nil {
		return fmt.Errorf("--initial-cluster: %w", err)
	}
	joinMembers, err := kvservice.ParseMembers(*join)
	if err != nil {
		return fmt.Errorf("--join: %w", err)
	}
	sec, err := loadSecurity(*peerCert, *peerKey, *peerCA, *httpCert, *httpKey, *tokenFile, *adminTokFile)
	if err != nil {
		return err
	}
	lg, err := newLogger(*logLevel)
	if err != nil {
		return err
	}
	defer func() { _ = lg.Sync() }()
	if *shards < 1 {
		return fmt.Errorf("--shards %d: want at least 1", *shards)
	}
	srv, err := startMember(kvservice.Config{
		ID: *id, ClusterID: cid, Dir: *dir, PeerAddr: *peerAddr, HTTPAddr: *httpAddr,
		InitialCluster: initialMembers, Join: joinMembers,
		SnapshotCount: *snapCount, CatchUpEntries: *catchUp,
		TickInterval: *tick, ElectionTicks: *electionTicks, RequestTimeout: *reqTimeout,
		LearnerPromoteLag: *promoteLag,
		Logger:            lg, MaxRequestBytes: *maxValue,
		PeerServerTLS: sec.PeerServerTLS, PeerClientTLS: sec.PeerClientTLS, HTTPTLS: sec.HTTPTLS,
		ClientToken: sec.ClientToken, AdminToken: sec.AdminToken, Insecure: *insecure, Shards: *shards,
	})
	if err != nil {
		return err
	}
	stopProfile, err := startProfile(*id)
	if err != nil {
		srv.Stop()
		return err
	}
	defer stopProfile()
	return waitForStop(srv, lg)
}

// parseClusterID reads --cluster-id: hex, with or without a 0x prefix.
func parseClusterID(s string) (uint64, error) {
	if s == "" {
		return 0, errors.New("--cluster-id is required: the hex ID every member of the cluster shares, e.g. --cluster-id 7261667463")
	}
	cid, err := strconv.ParseUint(strings.TrimPrefix(s, "0x"), 16, 64)
	if err != nil {
		return 0, fmt.Errorf("--cluster-id: %q is not a hex number", s)
	}
	return cid, nil
}

// member is a running member: one raft group (kvservice.Server) or a host
// of shards (kvservice.ShardedServer).
type member interface {
	Stop()
	Done() <-chan struct{}
	Err() error
}

// startMember starts a member of one raft group for --shards 1, a host of
// shards above.
func startMember(cfg kvservice.Config) (member, error) {
	if cfg.Shards > 1 {
		return kvservice.NewSharded(cfg)
	}
	return kvservice.New(cfg)
}

// waitForStop runs until SIGINT or SIGTERM (stopping srv) or until srv stops
// by itself; a member removed from the cluster stops without an error.
func waitForStop(srv member, lg *zap.Logger) error {
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

// loadSecurity reads the TLS material and token files named by the flags
// into the security fields of a kvservice.Config.
func loadSecurity(peerCert, peerKey, peerCA, httpCert, httpKey, tokenFile, adminTokenFile string) (kvservice.Config, error) {
	var c kvservice.Config
	var err error
	if peerCert != "" || peerKey != "" || peerCA != "" {
		if c.PeerServerTLS, c.PeerClientTLS, err = transport.LoadMutualTLS(peerCert, peerKey, peerCA); err != nil {
			return c, fmt.Errorf("--peer-cert/--peer-key/--peer-ca: %w", err)
		}
	}
	if httpCert != "" || httpKey != "" {
		cert, err := tls.LoadX509KeyPair(httpCert, httpKey)
		if err != nil {
			return c, fmt.Errorf("--http-cert/--http-key: %w", err)
		}
		c.HTTPTLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	if c.ClientToken, err = readToken("--token-file", tokenFile); err != nil {
		return c, err
	}
	if c.AdminToken, err = readToken("--admin-token-file", adminTokenFile); err != nil {
		return c, err
	}
	return c, nil
}

// readToken reads a token file: its content with surrounding white space
// trimmed, which must not be empty.
func readToken(flag, path string) (string, error) {
	if path == "" {
		return "", nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("%s: %w", flag, err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("%s: %s is empty", flag, path)
	}
	return tok, nil
}
