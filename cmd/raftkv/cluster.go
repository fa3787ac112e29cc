package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/raftkit/raft/kvservice"
)

// defaultClusterID is used by the cluster, demo and load commands.
const defaultClusterID = 0x7261667463

type clusterFlags struct {
	dir       string
	httpPort  int
	peerPort  int
	snapCount uint64
	maxValue  int64
	shards    int // 0: a new cluster's default (1), or a resumed one's
}

func (f *clusterFlags) register(fs *flag.FlagSet, defDir string) {
	fs.StringVar(&f.dir, "dir", defDir, "data directory (one subdirectory per member); reused when it exists")
	fs.IntVar(&f.httpPort, "http-port", 8001, "HTTP port of member 1 (members 2 and 3 use the next ones); 0 picks free ports")
	fs.IntVar(&f.peerPort, "peer-port", 9001, "raft port of member 1 (likewise)")
	fs.Uint64Var(&f.snapCount, "snapshot-count", 10000, "applied entries between snapshots (for new clusters)")
	fs.Int64Var(&f.maxValue, "max-value-size", defaultMaxValueSize, "largest request body a member accepts, in bytes (for new clusters; see serve -h)")
	fs.IntVar(&f.shards, "shards", 0, "raft groups the key space is split into, for a new cluster (default 1; a resumed cluster keeps its count)")
}

// serveArgs are the flags a new cluster's members are started with.
func (f clusterFlags) serveArgs() []string {
	args := []string{"--snapshot-count", fmt.Sprint(f.snapCount), "--catch-up-entries", fmt.Sprint(max(f.snapCount/10, 1)),
		"--max-value-size", fmt.Sprint(f.maxValue)}
	if f.shards > 1 {
		args = append(args, "--shards", fmt.Sprint(f.shards))
	}
	return args
}

// parseFlags parses args and refuses positional arguments: "cluster /tmp/x"
// would otherwise run in the default directory while the user believes
// it ran in /tmp/x.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%s: unexpected argument %q (flags only; did you mean --dir %s?)", fs.Name(), fs.Arg(0), fs.Arg(0))
	}
	return nil
}

// startCluster starts (or resumes) the 3-member cluster the flags describe
// and waits for a leader.
func startCluster(ctx context.Context, f clusterFlags) (*procCluster, uint64, error) {
	bin, err := os.Executable()
	if err != nil {
		return nil, 0, err
	}
	dir, err := filepath.Abs(f.dir)
	if err != nil {
		return nil, 0, err
	}
	l, resumed, err := loadOrCreateLayout(dir, 3, f.httpPort, f.peerPort, defaultClusterID, f.serveArgs())
	if err != nil {
		return nil, 0, err
	}
	switch {
	case resumed && f.shards != 0 && f.shards != l.shards():
		return nil, 0, fmt.Errorf("the cluster in %s runs %d shards (cluster.json); --shards %d cannot change that: "+
			"leave --shards out, or use another --dir", dir, l.shards(), f.shards)
	case resumed:
		say("resuming the cluster in %s (layout from cluster.json, %d shards)", dir, l.shards())
	default:
		say("creating a new 3-member cluster in %s with %d shards", dir, l.shards())
	}
	if err := checkAddrsFree(l); err != nil {
		return nil, 0, err
	}
	c := newProcCluster(bin, dir, l)
	for _, m := range l.Members {
		if err := c.start(m.ID); err != nil {
			c.stopAll()
			return nil, 0, err
		}
		say("  member %d: http://%s  (raft %s, data %s, log %s)", m.ID, m.HTTPAddr, m.PeerAddr,
			c.memberDir(m.ID), filepath.Join(dir, fmt.Sprintf("node%d.log", m.ID)))
	}
	lead, err := c.waitStarted(ctx)
	if err != nil {
		c.stopAll()
		return nil, 0, err
	}
	say("leader elected: member %d", lead)
	return c, lead, nil
}

// checkAddrsFree fails if a member's address is taken, most likely by this
// same cluster already running: its members would answer our status
// polls, and we would report their leader as ours.
func checkAddrsFree(l layout) error {
	for _, m := range l.Members {
		for _, a := range []string{m.HTTPAddr, m.PeerAddr} {
			ln, err := net.Listen("tcp", a)
			if err != nil {
				return fmt.Errorf("member %d cannot listen (is this cluster already running?): %w", m.ID, err)
			}
			ln.Close()
		}
	}
	return nil
}

// waitStarted waits for a leader among the members just started, and fails
// at once, with the member's own last words, if one of them exits first
// (say its port is taken or its data directory is locked by another
// cluster).
func (c *procCluster) waitStarted(ctx context.Context) (uint64, error) {
	wctx, cancel := context.WithTimeoutCause(ctx, 20*time.Second, errors.New("no leader within 20s"))
	defer cancel()
	type result struct {
		lead uint64
		err  error
	}
	res := make(chan result, 1)
	go func() {
		lead, err := c.waitLeader(wctx, c.ids()...)
		if err == nil && c.layout.shards() > 1 {
			err = c.waitServing(wctx)
			if err == nil {
				c.waitSpread(wctx, 30*time.Second)
			}
		}
		res <- result{lead, err}
	}()
	select {
	case r := <-res:
		return r.lead, r.err
	case id := <-c.exits:
		cancel()
		<-res
		return 0, c.exitError(id)
	}
}

// waitServing waits until every member serves: a sharded member refuses
// requests until it confirmed its shard count with the cluster, and
// reports no leader until then.
func (c *procCluster) waitServing(ctx context.Context) error {
	for _, id := range c.ids() {
		for {
			sctx, cancel := context.WithTimeout(ctx, time.Second)
			st, err := c.client.Status(sctx, c.member(id).HTTPAddr)
			cancel()
			if err == nil && st.Leader != 0 {
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("member %d does not serve: %w", id, context.Cause(ctx))
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	return nil
}

func (c *procCluster) ids() []uint64 {
	var ids []uint64
	for _, m := range c.layout.Members {
		ids = append(ids, m.ID)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids
}

func say(format string, args ...any) {
	fmt.Printf("%s  %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, args...))
}

func runCluster(args []string) error {
	fs := flag.NewFlagSet("cluster", flag.ExitOnError)
	var f clusterFlags
	f.register(fs, filepath.Join(os.TempDir(), "raftkv"))
	every := fs.Duration("progress", 5*time.Second, "how often to print the members' progress")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	stopWithParentUnderGoRun()
	c, _, err := startCluster(ctx, f)
	if err != nil {
		return err
	}
	defer func() {
		say("stopping the members")
		c.stopAll()
		say("stopped; run the same command again to resume from %s", c.dir)
	}()
	m := c.member(1)
	say("try:  curl -X PUT -d '{\"value\":\"world\"}' http://%s/v1/kv/hello", m.HTTPAddr)
	say("      curl http://%s/v1/kv/hello    curl http://%s/v1/status", m.HTTPAddr, m.HTTPAddr)
	say("Ctrl-C stops the cluster")
	tick := time.NewTicker(*every)
	defer tick.Stop()
	for {
		c.printProgress(ctx)
		select {
		case <-ctx.Done():
			return nil
		case id := <-c.exits:
			// A member that stops on its own is a fault the user must see;
			// the others are stopped too rather than left half a cluster.
			return c.exitError(id)
		case <-tick.C:
		}
	}
}

// printProgress prints one line per member: role, term, commit, applied.
func (c *procCluster) printProgress(ctx context.Context) {
	var parts []string
	for _, id := range c.ids() {
		sctx, cancel := context.WithTimeout(ctx, time.Second)
		st, err := c.client.Status(sctx, c.member(id).HTTPAddr)
		cancel()
		if err != nil {
			parts = append(parts, fmt.Sprintf("%d: down", id))
			continue
		}
		parts = append(parts, progressOf(id, st))
	}
	say("%s", strings.Join(parts, " | "))
}

// progressOf is one member's part of a progress line: its role, or for a
// sharded member how many shards it leads, with its indexes and keys.
func progressOf(id uint64, st kvservice.Status) string {
	if len(st.Shards) == 0 {
		role := strings.TrimPrefix(st.State, "State")
		return fmt.Sprintf("%d: %s term=%d commit=%d applied=%d keys=%d", id, role, st.Term, st.Commit, st.Applied, st.Keys)
	}
	led := 0
	for _, sh := range st.Shards {
		if sh.Leader == id {
			led++
		}
	}
	return fmt.Sprintf("%d: leads %d/%d shards commit=%d applied=%d keys=%d", id, led, len(st.Shards), st.Commit, st.Applied, st.Keys)
}

// waitSpread waits, at most d, until every member serves and sees every
// shard led by its preferred member (shard i by the i-th member, mod their
// count), so that what follows (a load run, a demo) sees the steady state
// rather than leaders moving.
func (c *procCluster) waitSpread(ctx context.Context, d time.Duration) {
	deadline := time.Now().Add(d)
	misplaced := -1
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if misplaced = c.misplacedLeaders(ctx); misplaced == 0 {
			say("every shard is led by its preferred member")
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	say("%d shards still led elsewhere than by their preferred member after %v; going on", misplaced, d)
}

// misplacedLeaders counts the shards some member sees led by another than
// their preferred member, or returns -1 when a member does not answer or
// does not serve yet.
func (c *procCluster) misplacedLeaders(ctx context.Context) int {
	ids := c.ids()
	n := 0
	for _, id := range ids {
		st, err := c.client.Status(ctx, c.member(id).HTTPAddr)
		if err != nil || st.Leader == 0 { // not serving yet (see kvservice's hello.go)
			return -1
		}
		for i, sh := range st.Shards {
			if sh.Leader != ids[i%len(ids)] {
				n++
			}
		}
	}
	return n
}
