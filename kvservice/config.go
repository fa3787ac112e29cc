package kvservice

import (
	"crypto/tls"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/raftkit/raft/raftpb"
)

// Config configures a Server. ID, ClusterID, Dir, PeerAddr and HTTPAddr are
// required, and a node starting on an empty Dir needs either InitialCluster
// or Join.
type Config struct {
	// ID is this member's raft ID, non-zero and never reused for another
	// member.
	ID uint64
	// ClusterID names the cluster; the transport refuses peers of other
	// clusters. It is recorded in Dir on first start and checked after.
	ClusterID uint64
	// Dir holds the node's data: the WAL under Dir/wal, the state
	// machine's Pebble store under Dir/state, received snapshots not yet
	// installed under Dir/snapshots, and a meta file. Starting again on
	// the same Dir resumes from it.
	Dir string
	// PeerAddr and HTTPAddr are the listen addresses (host:port) of the
	// raft transport and of the client API. Port 0 picks a free port (see
	// Server.PeerAddr and Server.HTTPAddr), useful only for the first
	// member or in tests since peers must know the address.
	PeerAddr string
	HTTPAddr string
	// InitialCluster lists every member of a new cluster, this one
	// included. It is used only when Dir holds no data: the node writes a
	// first snapshot naming these members as voters. All members of a new
	// cluster must be given the same list.
	InitialCluster []Member
	// Join lists existing members to contact when this node was added at
	// runtime (POST /v1/members) and starts with an empty Dir. The node
	// starts with no configuration and learns everything, members
	// included, from the leader's snapshot.
	Join []Member

	// Shards is the number of raft groups the key space is split into,
	// for NewSharded (at least 1; every member of a cluster the same, and
	// fixed when the cluster is created). New serves the whole key space
	// from one group and refuses Shards above 1.
	Shards int

	// SnapshotCount is the number of applied entries after which the
	// state machine is snapshotted and the log compacted. Default 10000.
	SnapshotCount uint64
	// CatchUpEntries is how many entries before a snapshot are kept in
	// the log, so that a slightly lagging follower catches up from the
	// log instead of needing the whole snapshot. Default 1000.
	CatchUpEntries uint64
	// TickInterval is the raft tick. Default 100ms.
	TickInterval time.Duration
	// ElectionTicks is raft's ElectionTick (heartbeats are every tick; with
	// shards, every other tick from 10 ticks up: see shardHeartbeatTicks).
	// Default 10.
	ElectionTicks int
	// RequestTimeout bounds how long a client request waits for its
	// proposal to apply or its read to be confirmed. Default 5s.
	RequestTimeout time.Duration
	// MaxRequestBytes bounds a request body. Default 1 MiB.
	MaxRequestBytes int64
	// LearnerPromoteLag is how many entries a learner's log may lag the
	// leader's for the leader to promote it to voter, automatically or
	// when asked (PromoteMember). Members are added as learners. Default
	// 100: small enough that the new voter is nearly current, large
	// enough to be reached under a steady write load.
	LearnerPromoteLag uint64
	// Logger receives structured logs. Default: no logs.
	Logger *zap.Logger

	// Security (see security.go). PeerServerTLS and PeerClientTLS secure
	// the raft transport (both or neither; transport.MutualTLS builds a
	// matching pair). HTTPTLS makes the client API serve HTTPS.
	PeerServerTLS *tls.Config
	PeerClientTLS *tls.Config
	HTTPTLS       *tls.Config
	// ClientToken, when set, is the bearer token the client API requires
	// (keys, members list, status, metrics). AdminToken is the token the
	// admin endpoints require (adding, removing and promoting members,
	// moving leadership); it is also accepted where ClientToken is. With
	// either set, admin endpoints refuse every other token.
	ClientToken string
	AdminToken  string
	// Insecure allows listening beyond loopback (a peer or HTTP address
	// that is not a loopback address) without TLS on both listeners and a
	// client token. Without it, New refuses such a configuration.
	Insecure bool

	// hooks are set by tests only.
	hooks *testHooks
}

// testHooks let tests cut the server short at chosen points.
type testHooks struct {
	// beforeApply runs before committed entries go to the store; an error
	// stops the server there, as a crash after the WAL write would.
	beforeApply func(ents []raftpb.Entry) error
	// snapshotLimit, when positive, replaces a ShardedServer's bound on
	// a shard's inline snapshot.
	snapshotLimit int
	// beforeInstall runs before a ShardedServer installs a received shard
	// snapshot; an error stops the server there, as a crash would.
	beforeInstall func() error
	// noConfigSnapshot keeps a ShardedServer from snapshotting a shard
	// after a configuration change, as a crash right after the change
	// would.
	noConfigSnapshot bool
}

func (c Config) withDefaults() (Config, error) {
	switch {
	case c.ID == 0:
		return c, errors.New("kvservice: config: ID must not be zero")
	case c.ClusterID == 0:
		return c, errors.New("kvservice: config: ClusterID must not be zero")
	case c.Dir == "":
		return c, errors.New("kvservice: config: Dir is required")
	case c.PeerAddr == "" || c.HTTPAddr == "":
		return c, errors.New("kvservice: config: PeerAddr and HTTPAddr are required")
	}
	if err := c.checkExposure(); err != nil {
		return c, err
	}
	if c.SnapshotCount == 0 {
		c.SnapshotCount = 10000
	}
	if c.CatchUpEntries == 0 {
		c.CatchUpEntries = 1000
	}
	if c.TickInterval <= 0 {
		c.TickInterval = 100 * time.Millisecond
	}
	if c.ElectionTicks <= 0 {
		c.ElectionTicks = 10
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = 5 * time.Second
	}
	if c.MaxRequestBytes <= 0 {
		c.MaxRequestBytes = 1 << 20
	}
	if c.LearnerPromoteLag == 0 {
		c.LearnerPromoteLag = 100
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	return c, nil
}

// ParseMembers parses a member list of the form
// "1=127.0.0.1:7001/127.0.0.1:8001,2=..." (id=peerAddr/httpAddr, comma
// separated), as the raftkv command takes it.
func ParseMembers(s string) ([]Member, error) {
	var out []Member
	seen := map[uint64]bool{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		idStr, addrs, ok := strings.Cut(part, "=")
		if !ok {
			return nil, fmt.Errorf("member %q: want id=peerAddr/httpAddr", part)
		}
		id, err := strconv.ParseUint(idStr, 10, 64)
		if err != nil || id == 0 {
			return nil, fmt.Errorf("member %q: bad ID", part)
		}
		peer, httpAddr, ok := strings.Cut(addrs, "/")
		if !ok || peer == "" || httpAddr == "" {
			return nil, fmt.Errorf("member %q: want id=peerAddr/httpAddr", part)
		}
		if seen[id] {
			return nil, fmt.Errorf("member %d listed twice", id)
		}
		seen[id] = true
		out = append(out, Member{ID: id, PeerAddr: peer, HTTPAddr: httpAddr})
	}
	return out, nil
}

// FormatMembers is the inverse of ParseMembers.
func FormatMembers(ms []Member) string {
	parts := make([]string, len(ms))
	for i, m := range ms {
		parts[i] = fmt.Sprintf("%d=%s/%s", m.ID, m.PeerAddr, m.HTTPAddr)
	}
	return strings.Join(parts, ",")
}
