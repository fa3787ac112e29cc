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

// loadSpec is what a load run does: clients goroutines PUT distinct keys
// with values of valueSize bytes for d. With rate 0 each client writes
// again as soon as its last write is acknowledged (a closed loop, the
// issue's measure); with rate above 0 the writes are scheduled rate per
// second in all (an open loop), and each client takes the next scheduled
// write when it is free.
type loadSpec struct {
	clients, valueSize int
	d                  time.Duration
	rate               int
}

// runLoadOn runs spec, each key through the member route names, and
// measures each write until its acknowledgement (committed on a quorum's
// disks and applied): from its request in a closed loop, from its
// scheduled time in an open loop, so that a write that waited for a free
// client counts that wait (no coordinated omission).
func runLoadOn(ctx context.Context, route func(key string) string, spec loadSpec) loadResult {
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: spec.clients}}
	cl := kvservice.Client{HTTP: hc}
	value := strings.Repeat("x", spec.valueSize)
	var (
		mu    sync.Mutex
		lats  []time.Duration
		errs  int
		first error
		wg    sync.WaitGroup
	)
	start := time.Now()
	deadline := start.Add(spec.d)
	next := closedLoop(deadline)
	if spec.rate > 0 {
		next = openLoop(ctx, start, deadline, spec.rate, spec.clients)
	}
	for g := 0; g < spec.clients; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			var mine []time.Duration
			bad := 0
			var firstBad error
			for i := 0; ctx.Err() == nil; i++ {
				t, ok := next()
				if !ok {
					break
				}
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
	if spec.rate > 0 {
		// The run lasts its schedule; the tail of writes still in flight
		// at its end are not throughput.
		r.elapsed = spec.d
	}
	if len(lats) > 0 {
		sort.Slice(lats, func(i, j int) bool { return lats[i] < lats[j] })
		r.p50 = lats[len(lats)/2]
		r.p99 = lats[len(lats)*99/100]
		r.max = lats[len(lats)-1]
	}
	return r
}

// closedLoop hands each client its next write's start, now, until the
// deadline.
func closedLoop(deadline time.Time) func() (time.Time, bool) {
	return func() (time.Time, bool) {
		now := time.Now()
		return now, now.Before(deadline)
	}
}

// openLoop schedules rate writes per second from start to deadline and
// hands each to the first free client, with the time it was due. The
// schedule runs ahead of the clients by at most clients writes; when they
// fall further behind, the writes wait in the schedule, still timed from
// when they were due.
func openLoop(ctx context.Context, start, deadline time.Time, rate, clients int) func() (time.Time, bool) {
	due := make(chan time.Time, clients)
	go func() {
		defer close(due)
		interval := time.Second / time.Duration(rate)
		for k := 0; ; k++ {
			t := start.Add(time.Duration(k) * interval)
			if !t.Before(deadline) {
				return
			}
			if wait := time.Until(t); wait > 0 {
				select {
				case <-time.After(wait):
				case <-ctx.Done():
					return
				}
			}
			select {
			case due <- t:
			case <-ctx.Done():
				return
			}
		}
	}()
	return func() (time.Time, bool) {
		t, ok := <-due
		return t, ok
	}
}

func runLoad(args []string) error {
	fs := flag.NewFlagSet("load", flag.ExitOnError)
	var o loadOpts
	o.register(fs)
	fs.IntVar(&o.shards, "shards", 1, "raft groups the key space is split into (above 1: one multiraft host per member)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := o.check(); err != nil {
		return err
	}
	// Ctrl-C ends the run early: the summary so far is printed, the members
	// stopped and the temporary directory removed, by the defers.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	stopWithParentUnderGoRun()
	out, err := loadOnce(ctx, o)
	if err != nil || out.interrupted {
		return err
	}
	fmt.Println(out.line)
	return nil
}

// loadOpts are a load run's settings (the flags of load and compare).
type loadOpts struct {
	dir                              string
	clients, valueSize, shards, rate int
	d                                time.Duration
	via                              string
}

// register adds the flags load and compare share to fs.
func (o *loadOpts) register(fs *flag.FlagSet) {
	fs.StringVar(&o.dir, "dir", "", "data directory for a fresh cluster (default: a temporary one, removed after)")
	fs.IntVar(&o.clients, "clients", 16, "concurrent clients")
	fs.IntVar(&o.valueSize, "value-size", 128, "bytes per value")
	fs.DurationVar(&o.d, "duration", 10*time.Second, "how long to write")
	fs.IntVar(&o.rate, "rate", 0, "writes per second in all, on a fixed schedule (0: each client writes again when acknowledged)")
	fs.StringVar(&o.via, "via", "leader", "where each write goes: leader (its shard's leader) or follower (a member that does not lead it; raft forwards the write)")
}

func (o *loadOpts) check() error {
	if o.via != "leader" && o.via != "follower" {
		return fmt.Errorf("load: --via %q: want leader or follower", o.via)
	}
	if o.rate < 0 {
		return fmt.Errorf("load: --rate %d: want 0 or more", o.rate)
	}
	if o.shards < 1 {
		return fmt.Errorf("load: --shards %d: want at least 1", o.shards)
	}
	return nil
}

// loadOutcome is what one load run measured: its LOAD line and the
// numbers in it.
type loadOutcome struct {
	line        string
	m           loadMetrics
	interrupted bool // ctx ended the run early; line is empty
}

// loadOnce starts a fresh cluster as o says, writes to it for o.d and
// returns what the run measured, having said how it went on the way.
func loadOnce(ctx context.Context, o loadOpts) (loadOutcome, error) {
	if o.dir == "" {
		tmp, err := os.MkdirTemp("", "raftkv-load-")
		if err != nil {
			return loadOutcome{}, err
		}
		defer os.RemoveAll(tmp)
		o.dir = tmp
	}
	c, lead, err := startCluster(ctx, clusterFlags{dir: o.dir, snapCount: 10000, maxValue: defaultMaxValueSize, shards: o.shards})
	if err != nil {
		return loadOutcome{}, err
	}
	defer c.stopAll()
	route, err := loadRoute(ctx, c, lead, o.shards, o.via == "follower")
	if err != nil {
		return loadOutcome{}, err
	}
	pace := "each as soon as its last write is acknowledged"
	if o.rate > 0 {
		pace = fmt.Sprintf("%d writes/s in all on a fixed schedule", o.rate)
	}
	say("writing through the %ss (%d shards) with %d clients (%s), %d-byte values, fsync on, for %v",
		o.via, o.shards, o.clients, pace, o.valueSize, o.d)
	before, err := c.costWithin(costTimeout)
	if err != nil {
		return loadOutcome{}, err
	}
	c.signalAll(syscall.SIGUSR1) // profiles, if any, start over here (profile.go)
	r := runLoadOn(ctx, route, loadSpec{clients: o.clients, valueSize: o.valueSize, d: o.d, rate: o.rate})
	c.signalAll(syscall.SIGUSR2)
	if ctx.Err() != nil {
		say("interrupted; so far: %v", r)
		return loadOutcome{interrupted: true}, nil
	}
	after, err := c.costWithin(costTimeout)
	if err != nil {
		return loadOutcome{}, err
	}
	say("%v", r)
	spent := after.sub(before)
	say("leader changes seen by the members during the run: %d (terms begun: %d)", spent.leaderChanges, spent.terms)
	say("%s", costLine(r, spent))
	m := metricsOf(r, spent)
	out := loadOutcome{line: loadLine(o.shards, o.clients, o.rate, m), m: m}
	if o.via != "leader" {
		out.line += " via=" + o.via
	}
	return out, nil
}

// loadRoute returns where the load sends each key: the leader of one
// group, or, with shards, the leader of the key's shard as member lead
// sees them now (a member that is no longer the leader forwards); with
// viaFollower, the member after that leader in ID order instead, which
// proposes the write through raft's forwarding and answers once it
// applied it.
func loadRoute(ctx context.Context, c *procCluster, lead uint64, shards int, viaFollower bool) (func(string) string, error) {
	to := func(id uint64) string {
		if viaFollower {
			id = c.nextMember(id)
		}
		return c.member(id).HTTPAddr
	}
	leader := to(lead)
	if shards <= 1 {
		return func(string) string { return leader }, nil
	}
	st, err := c.client.Status(ctx, c.member(lead).HTTPAddr)
	if err != nil {
		return nil, err
	}
	addrs := make([]string, len(st.Shards))
	for i, sh := range st.Shards {
		addrs[i] = leader
		if sh.Leader != 0 {
			addrs[i] = to(sh.Leader)
		}
	}
	return func(key string) string { return addrs[kvservice.ShardOf(key, len(addrs))] }, nil
}
