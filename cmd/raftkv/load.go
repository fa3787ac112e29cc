package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/raftkit/raft/kvservice"
)

func isNoLeader(err error) bool {
	var e *kvservice.APIError
	return errors.As(err, &e) && e.Code == http.StatusServiceUnavailable && e.Outcome == "not-applied"
}

// loadResult summarizes a load run.
type loadResult struct {
	writes   int
	errors   int
	elapsed  time.Duration
	p50, p99 time.Duration
	max      time.Duration
	firstErr error // the first error a client saw, if any
}

func (r loadResult) String() string {
	s := fmt.Sprintf("%d writes in %v: %.0f writes/s, latency p50 %v p99 %v max %v, %d errors",
		r.writes, r.elapsed.Round(time.Millisecond), float64(r.writes)/r.elapsed.Seconds(),
		r.p50.Round(time.Microsecond), r.p99.Round(time.Microsecond), r.max.Round(time.Microsecond), r.errors)
	if r.firstErr != nil {
		s += fmt.Sprintf(" (first: %v)", r.firstErr)
	}
	return s
}

// runLoadOn has clients goroutines PUT distinct keys with values of
// valueSize bytes for d, each key through the member route names, and
// measures each write from request to acknowledgement (committed on a
// quorum's disks and applied).
func runLoadOn(ctx context.Context, route func(key string) string, clients, valueSize int, d time.Duration) loadResult {
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
	cl := kvservice.Client{HTTP: hc}
	value := strings.Repeat("x", valueSize)
	var (
		mu    sync.Mutex
		lats  []time.Duration
		errs  int
		first error
		wg    sync.WaitGroup
	)
	start := time.Now()
	deadline := start.Add(d)
	for g := 0; g < clients; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			var mine []time.Duration
			bad := 0
			var firstBad error
			for i := 0; time.Now().Before(deadline) && ctx.Err() == nil; i++ {
				t := time.Now()
				key := fmt.Sprintf("load/%d/%d", g, i)
				err := cl.Put(ctx, route(key), key, value)
				if err != nil {
					if ctx.Err() == nil { // not a write cut short by Ctrl-C
						bad++
						if firstBad == nil {
							firstBad = err
						}
					}
					continue
				}
				mine = append(mine, time.Since(t))
			}
			mu.Lock()
			lats = append(lats, mine...)
			errs += bad
			if first == nil {
				first = firstBad
			}
			mu.Unlock()
		}(g)
	}
	wg.Wait()
	r := loadResult{writes: len(lats), errors: errs, elapsed: time.Since(start), firstErr: first}
	if len(lats) > 0 {
		sort.Slice(lats, func(i, j int) bool { return lats[i] < lats[j] })
		r.p50 = lats[len(lats)/2]
		r.p99 = lats[len(lats)*99/100]
		r.max = lats[len(lats)-1]
	}
	return r
}

func runLoad(args []string) error {
	fs := flag.NewFlagSet("load", flag.ExitOnError)
	dir := fs.String("dir", "", "data directory for a fresh cluster (default: a temporary one, removed after)")
	clients := fs.Int("clients", 16, "concurrent clients")
	valueSize := fs.Int("value-size", 128, "bytes per value")
	d := fs.Duration("duration", 10*time.Second, "how long to write")
	shards := fs.Int("shards", 1, "raft groups the key space is split into (above 1: one multiraft host per member)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *shards < 1 {
		return fmt.Errorf("load: --shards %d: want at least 1", *shards)
	}
	if *dir == "" {
		tmp, err := os.MkdirTemp("", "raftkv-load-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		*dir = tmp
	}
	// Ctrl-C ends the run early: the summary so far is printed, the members
	// stopped and the temporary directory removed, by the defers.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	stopWithParentUnderGoRun()
	c, lead, err := startCluster(ctx, clusterFlags{dir: *dir, snapCount: 10000, maxValue: defaultMaxValueSize, shards: *shards})
	if err != nil {
		return err
	}
	defer c.stopAll()
	route, err := loadRoute(ctx, c, lead, *shards)
	if err != nil {
		return err
	}
	say("writing through the leaders (%d shards) with %d clients, %d-byte values, fsync on, for %v",
		*shards, *clients, *valueSize, *d)
	// The members' costs are read on a context of their own: a Ctrl-C
	// while reading them still ends the run with its summary.
	costCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	before, err := c.cost(costCtx)
	if err != nil {
		return err
	}
	c.signalAll(syscall.SIGUSR1) // profiles, if any, start over here (profile.go)
	r := runLoadOn(ctx, route, *clients, *valueSize, *d)
	c.signalAll(syscall.SIGUSR2)
	if ctx.Err() != nil {
		say("interrupted; so far: %v", r)
		return nil
	}
	after, err := c.cost(costCtx)
	if err != nil {
		return err
	}
	say("%v", r)
	spent := after.sub(before)
	say("leader changes seen by the members during the run: %d (terms begun: %d)", spent.leaderChanges, spent.terms)
	say("%s", costLine(r, spent))
	fmt.Println(loadLine(*shards, *clients, r, spent))
	return nil
}

// loadRoute returns where the load sends each key: the leader of one
// group, or, with shards, the leader of the key's shard as member lead
// sees them now (a member that is no longer the leader forwards).
func loadRoute(ctx context.Context, c *procCluster, lead uint64, shards int) (func(string) string, error) {
	leader := c.member(lead).HTTPAddr
	if shards <= 1 {
		return func(string) string { return leader }, nil
	}
	st, err := c.client.Status(ctx, leader)
	if err != nil {
		return nil, err
	}
	addrs := make([]string, len(st.Shards))
	for i, sh := range st.Shards {
		addrs[i] = leader
		if sh.Leader != 0 {
			addrs[i] = c.member(sh.Leader).HTTPAddr
		}
	}
	return func(key string) string { return addrs[kvservice.ShardOf(key, len(addrs))] }, nil
}
