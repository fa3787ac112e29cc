package main

import (
	"context"
	"fmt"
	"math"
	"math/rand"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/raftkit/raft/kvservice"
)

// A porcupine model of the service's keys: each key is independent (the
// history is partitioned by key), and a write whose outcome the client
// never learned may or may not have happened.

type kvInput struct {
	op     string // "get", "put", "cas"
	key    string
	value  string
	expect *string
}

type kvOutput struct {
	value   string
	found   bool // get
	ok      bool // cas
	unknown bool // the write's outcome was never learned
}

type keyState struct {
	value string
	set   bool
}

var kvModel = porcupine.NondeterministicModel{
	Partition: func(h []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		var keys []string
		for _, op := range h {
			k := op.Input.(kvInput).key
			if _, ok := byKey[k]; !ok {
				keys = append(keys, k)
			}
			byKey[k] = append(byKey[k], op)
		}
		out := make([][]porcupine.Operation, 0, len(keys))
		for _, k := range keys {
			out = append(out, byKey[k])
		}
		return out
	},
	Init: func() []interface{} { return []interface{}{keyState{}} },
	Step: func(st, in, out interface{}) []interface{} {
		s, i, o := st.(keyState), in.(kvInput), out.(kvOutput)
		switch i.op {
		case "get":
			if o.found == s.set && (!o.found || o.value == s.value) {
				return []interface{}{s}
			}
			return nil
		case "put":
			return []interface{}{keyState{value: i.value, set: true}}
		case "cas":
			holds := (i.expect == nil && !s.set) || (i.expect != nil && s.set && s.value == *i.expect)
			next := keyState{value: i.value, set: true}
			switch {
			case o.unknown && holds:
				return []interface{}{s, next}
			case o.unknown:
				return []interface{}{s}
			case o.ok && holds:
				return []interface{}{next}
			case !o.ok && !holds:
				return []interface{}{s}
			}
			return nil
		}
		return nil
	},
	DescribeOperation: func(in, out interface{}) string {
		i, o := in.(kvInput), out.(kvOutput)
		return fmt.Sprintf("%s(%s %q) -> %+v", i.op, i.key, i.value, o)
	},
}

// recorder collects a history from concurrent clients.
type recorder struct {
	mu    sync.Mutex
	start time.Time
	ops   []porcupine.Operation
	acked map[string]string // unique-key writes acknowledged to a client
	keys  int               // how many shared keys the clients use
}

func (r *recorder) now() int64 { return int64(time.Since(r.start)) }

func (r *recorder) add(client int, in kvInput, call int64, out kvOutput, ret int64) {
	r.mu.Lock()
	r.ops = append(r.ops, porcupine.Operation{ClientId: client, Input: in, Call: call, Output: out, Return: ret})
	r.mu.Unlock()
}

// client runs random operations on a few shared keys through random
// members until stop is closed. Failed reads are left out of the history
// (they observed nothing); writes that certainly failed are left out too;
// writes with an unknown outcome stay in, open-ended.
func (r *recorder) client(c *procCluster, id int, seed int64, stop <-chan struct{}) {
	rng := rand.New(rand.NewSource(seed))
	ids := c.ids()
	for n := 0; ; n++ {
		select {
		case <-stop:
			return
		default:
		}
		addr := c.addr(ids[rng.Intn(len(ids))])
		in := kvInput{key: fmt.Sprintf("lin/%d", rng.Intn(r.keys))}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		call := r.now()
		var out kvOutput
		var err error
		switch p := rng.Intn(10); {
		case p < 4:
			in.op = "get"
			out.value, out.found, err = c.client.Get(ctx, addr, in.key, false)
		case p < 8:
			in.op, in.value = "put", fmt.Sprintf("c%d-%d", id, n)
			err = c.client.Put(ctx, addr, in.key, in.value)
		default:
			in.op, in.value = "cas", fmt.Sprintf("c%d-%d", id, n)
			if rng.Intn(3) > 0 {
				r.mu.Lock()
				// Expect some recent value of this key, so that some succeed.
				for i := len(r.ops) - 1; i >= 0 && i > len(r.ops)-20; i-- {
					if oi := r.ops[i].Input.(kvInput); oi.key == in.key && oi.op != "get" {
						v := oi.value
						in.expect = &v
						break
					}
				}
				r.mu.Unlock()
			}
			out.ok, err = c.client.CompareAndSet(ctx, addr, in.key, in.expect, in.value)
		}
		ret := r.now()
		cancel()
		switch {
		case err == nil:
			r.add(id, in, call, out, ret)
		case in.op == "get" || kvservice.NotApplied(err):
		default:
			r.add(id, in, call, kvOutput{unknown: true}, math.MaxInt64)
		}
		if err != nil {
			time.Sleep(20 * time.Millisecond) // a crashed member: do not spin
		}
	}
}

// writer writes unique keys and remembers the acknowledged ones.
func (r *recorder) writer(c *procCluster, stop <-chan struct{}) {
	ids := c.ids()
	for n := 0; ; n++ {
		select {
		case <-stop:
			return
		default:
		}
		k, v := fmt.Sprintf("acked/%05d", n), fmt.Sprintf("w%d", n)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := c.client.Put(ctx, c.addr(ids[n%len(ids)]), k, v)
		cancel()
		if err == nil {
			r.mu.Lock()
			r.acked[k] = v
			r.mu.Unlock()
		} else {
			time.Sleep(20 * time.Millisecond)
		}
	}
}

func (r *recorder) ackedCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.acked)
}

// TestLeaderCrashes SIGKILLs the leader twice (and restarts it) while
// clients read and write through every member. No acknowledged write is
// lost, the restarted members catch up, and the history the clients saw is
// linearizable.
//
// The clients share 6 keys: the checker's search grows with the operations
// of one key that overlap, and every write whose outcome a crash made
// unknown overlaps everything after it on its key. With 3 keys a run under
// -race on a loaded machine once took the checker past its budget
// (porcupine's Unknown, which fails the test).
func TestLeaderCrashes(t *testing.T) {
	leaderCrashes(t, 6)
}

// TestShardedLeaderCrashes is TestLeaderCrashes on 4 shards: killing the
// member that leads shard 0 takes down the leaders of a third of the
// shards at once; the history is checked per key, across shards, and
// the shards' small snapshot count makes the restarted member catch up
// from inline Pebble snapshots too.
func TestShardedLeaderCrashes(t *testing.T) {
	leaderCrashes(t, 8, "--shards", "4", "--snapshot-count", "50")
}

// leaderCrashes runs TestLeaderCrashes on a cluster started with
// serveArgs, the clients using keys shared keys each.
func leaderCrashes(t *testing.T, keys int, serveArgs ...string) {
	c, lead := newTestCluster(t, 3, append([]string{"--snapshot-count", "200", "--catch-up-entries", "20"}, serveArgs...)...)
	rec := &recorder{start: time.Now(), acked: map[string]string{}, keys: keys}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			rec.client(c, i, int64(i+1), stop)
		}(i)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		rec.writer(c, stop)
	}()
	progress := func(n int) {
		target := rec.ackedCount() + n
		waitFor(t, 30*time.Second, "writes to be acknowledged", func() bool { return rec.ackedCount() >= target })
	}
	progress(30)
	for round := 0; round < 2; round++ {
		t.Logf("round %d: SIGKILL leader %d", round, lead)
		c.kill(lead)
		var rest []uint64
		for _, id := range c.ids() {
			if id != lead {
				rest = append(rest, id)
			}
		}
		newLead := c.mustLeader(t, rest...)
		progress(30)
		if err := c.start(lead); err != nil {
			t.Fatal(err)
		}
		progress(30)
		c.mustCatchUp(t, lead, newLead)
		lead = newLead
	}
	close(stop)
	wg.Wait()

	// Every acknowledged write is on every member.
	for _, id := range c.ids() {
		c.mustCatchUp(t, id, lead)
		for k, v := range rec.acked {
			got, ok, err := c.client.Get(context.Background(), c.addr(id), k, true)
			if err != nil || !ok || got != v {
				t.Fatalf("member %d lost acknowledged write %s=%s: %q %v %v", id, k, v, got, ok, err)
			}
		}
	}
	res, info := porcupine.CheckOperationsVerbose(kvModel.ToModel(), rec.ops, 30*time.Second)
	if res != porcupine.Ok {
		path := c.dir + "/history.html"
		_ = porcupine.VisualizePath(kvModel.ToModel(), info, path)
		t.Fatalf("history of %d operations is %s (visualization: %s)", len(rec.ops), res, path)
	}
	var unknown int
	for _, op := range rec.ops {
		if op.Output.(kvOutput).unknown {
			unknown++
		}
	}
	t.Logf("%d acknowledged unique writes; %d operations linearizable (%d with unknown outcome)", len(rec.acked), len(rec.ops), unknown)
}

// TestRestartCatchUp restarts a follower twice: after missing a few entries
// it catches up from the leader's log, after missing more than the leader
// kept (the log was compacted past it) from a snapshot.
func TestRestartCatchUp(t *testing.T) {
	c, lead := newTestCluster(t, 3, "--snapshot-count", "40", "--catch-up-entries", "5")
	var f uint64
	for _, id := range c.ids() {
		if id != lead {
			f = id
			break
		}
	}
	check := func(keys map[string]string) {
		t.Helper()
		for k, v := range keys {
			got, ok, err := c.client.Get(context.Background(), c.addr(f), k, true)
			if err != nil || !ok || got != v {
				t.Fatalf("restarted member %d: %s = %q (found %v, %v), want %q", f, k, got, ok, err, v)
			}
		}
	}
	keys := map[string]string{}
	put := func(n int, prefix string) {
		for i := 0; i < n; i++ {
			k, v := fmt.Sprintf("%s/%03d", prefix, i), fmt.Sprintf("v%d", i)
			c.mustPut(t, lead, k, v)
			keys[k] = v
		}
	}
	put(10, "before")
	c.mustCatchUp(t, f, lead)

	c.kill(f)
	put(3, "log")
	if err := c.start(f); err != nil {
		t.Fatal(err)
	}
	c.mustCatchUp(t, f, lead)
	check(keys)
	if n := c.metric(t, f, "raftkv_snapshots_installed_total"); n != 0 {
		t.Errorf("catching up 3 entries installed %v snapshots; want the log", n)
	}

	c.kill(f)
	put(120, "snap")
	if c.metric(t, lead, "raftkv_snapshots_taken_total") < 2 {
		t.Fatal("the leader took no snapshots")
	}
	if err := c.start(f); err != nil {
		t.Fatal(err)
	}
	c.mustCatchUp(t, f, lead)
	check(keys)
	if n := c.metric(t, f, "raftkv_snapshots_installed_total"); n < 1 {
		t.Errorf("member %d caught up past the compacted log without a snapshot", f)
	}
	// And once more from its own data, now including a snapshot.
	c.kill(f)
	if err := c.start(f); err != nil {
		t.Fatal(err)
	}
	c.mustCatchUp(t, f, lead)
	check(keys)
	st, _ := c.client.Status(context.Background(), c.addr(f))
	if !strings.Contains(st.State, "Follower") || st.Keys != len(keys) {
		t.Fatalf("restarted member status: %+v", st)
	}
}
