package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/raftkit/raft/kvservice"
)

// testBin is the raftkv binary the end-to-end tests run, built once by
// TestMain.
var testBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "raftkv-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	testBin = filepath.Join(dir, "raftkv")
	out, err := exec.Command("go", "build", "-o", testBin, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "building raftkv: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// fastServeArgs make elections take a few hundred milliseconds. A leader
// steps down when it hears from no quorum for an election timeout, so on a
// loaded 2-core machine (and under -race, several times slower) a short
// timeout costs spurious leader changes mid-test; the timeout is 400 ms
// plain and 1.2 s under -race.
var fastServeArgs = func() []string {
	ticks := "20"
	if raceEnabled {
		ticks = "60"
	}
	return []string{"--tick", "20ms", "--election-ticks", ticks, "--request-timeout", "5s"}
}()

// newTestCluster starts n members on free loopback ports and waits for a
// leader. The processes are stopped when the test ends; if it failed, the
// tail of each member's log is printed.
func newTestCluster(t *testing.T, n int, serveArgs ...string) (*procCluster, uint64) {
	t.Helper()
	dir := t.TempDir()
	l, _, err := loadOrCreateLayout(dir, n, 0, 0, 0xe2e, append(append([]string(nil), fastServeArgs...), serveArgs...))
	if err != nil {
		t.Fatal(err)
	}
	c := newProcCluster(testBin, dir, l)
	t.Cleanup(func() {
		c.stopAll()
		if t.Failed() {
			c.dumpLogs(t)
		}
	})
	for _, id := range c.ids() {
		if err := c.start(id); err != nil {
			t.Fatal(err)
		}
	}
	lead := c.mustLeader(t, c.ids()...)
	return c, lead
}

func (c *procCluster) mustLeader(t *testing.T, ids ...uint64) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	lead, err := c.waitLeader(ctx, ids...)
	if err != nil {
		t.Fatal(err)
	}
	return lead
}

func (c *procCluster) dumpLogs(t *testing.T) {
	matches, _ := filepath.Glob(filepath.Join(c.dir, "node*.log"))
	for _, p := range matches {
		b, _ := os.ReadFile(p)
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		var notable []string
		for _, l := range lines {
			if strings.Contains(l, "transfer") || strings.Contains(l, "\"error\"") {
				notable = append(notable, l)
			}
		}
		if len(notable) > 0 {
			t.Logf("--- %s (transfers and errors)\n%s", filepath.Base(p), strings.Join(notable, "\n"))
		}
		if len(lines) > 40 {
			lines = lines[len(lines)-40:]
		}
		t.Logf("--- %s (tail)\n%s", filepath.Base(p), strings.Join(lines, "\n"))
	}
}

func (c *procCluster) addr(id uint64) string { return c.member(id).HTTPAddr }

// mustPut writes through member id as the API says a client should: it
// retries while there is certainly no leader, and after an unknown outcome
// (a leader change or timeout mid-request) it reads the key back and
// writes again unless the value is there. Only a refusal fails the test.
func (c *procCluster) mustPut(t *testing.T, id uint64, key, value string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		err := retryWrite(ctx, func(ctx context.Context) error { return c.client.Put(ctx, c.addr(id), key, value) })
		if err == nil {
			return
		}
		if kvservice.NotApplied(err) && !isNoLeader(err) || ctx.Err() != nil {
			t.Fatalf("put %s via %d: %v", key, id, err)
		}
		t.Logf("put %s via %d: %v; reading back", key, id, err)
		if got, ok, rerr := c.readBack(ctx, id, key); rerr == nil && ok && got == value {
			return
		}
	}
}

// mustChange makes a membership request (op) as the API says a client
// should: repeated while there is certainly no leader (503) and after a
// timeout (504: its outcome unknown, or done in some shards only), which
// finishes it. After a timeout, an answer with the code finished (409 for
// an addition: the member exists; 404 for a removal: it is gone) means
// the attempt that timed out did it. Any other error fails the test.
func mustChange(t *testing.T, what string, finished int, op func(ctx context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	timedOut := false
	for {
		err := retryWrite(ctx, op)
		var e *kvservice.APIError
		switch {
		case err == nil:
			return
		case timedOut && errors.As(err, &e) && e.Code == finished:
			t.Logf("%s: %v: done by the attempt that timed out", what, err)
			return
		case errors.As(err, &e) && e.Code == http.StatusGatewayTimeout && ctx.Err() == nil:
			t.Logf("%s: %v; repeating", what, err)
			timedOut = true
		default:
			t.Fatalf("%s: %v", what, err)
		}
	}
}

// readBack reads key linearizably through member id, retrying while there
// is no leader.
func (c *procCluster) readBack(ctx context.Context, id uint64, key string) (string, bool, error) {
	var got string
	var ok bool
	err := retryWrite(ctx, func(ctx context.Context) error {
		var err error
		got, ok, err = c.client.Get(ctx, c.addr(id), key, false)
		return err
	})
	return got, ok, err
}

// mustCatchUp waits until member id applied what member ref has committed
// and, with shards, what every running member knows committed in each
// shard: ref leads some shards and follows the others, and a follower
// learns a commit index late (its leader holds commit announcements), so
// ref's own view of a shard it follows may miss acknowledged writes.
func (c *procCluster) mustCatchUp(t *testing.T, id, ref uint64) kvservice.Status {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := c.client.Status(ctx, c.addr(ref))
	if err != nil {
		t.Fatal(err)
	}
	for _, other := range c.ids() {
		if other == ref || !c.running(other) || len(st.Shards) == 0 {
			continue
		}
		ost, err := c.client.Status(ctx, c.addr(other))
		if err != nil || len(ost.Shards) != len(st.Shards) {
			continue // a member starting up knows less than ref
		}
		for i := range st.Shards {
			st.Shards[i].Commit = max(st.Shards[i].Commit, ost.Shards[i].Commit)
		}
	}
	got, err := c.waitCaughtUp(ctx, id, st)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// metric returns the value of an unlabeled metric of member id.
func (c *procCluster) metric(t *testing.T, id uint64, name string) float64 {
	t.Helper()
	resp, err := httpGet(context.Background(), "http://"+c.addr(id)+"/metrics")
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(strings.NewReader(resp))
	for sc.Scan() {
		var v float64
		if f := strings.Fields(sc.Text()); len(f) == 2 && f[0] == name {
			if _, err := fmt.Sscan(f[1], &v); err == nil {
				return v
			}
		}
	}
	t.Fatalf("metric %s not found on member %d", name, id)
	return 0
}

// waitFor polls cond until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// mustGet reads key linearizably through member id, retrying while there
// is no leader; reads change nothing, so retrying is always safe.
func (c *procCluster) mustGet(t *testing.T, id uint64, key string) (string, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		got, ok, err := c.readBack(ctx, id, key)
		if err == nil {
			return got, ok
		}
		if kvservice.NotApplied(err) && !isNoLeader(err) || ctx.Err() != nil {
			t.Fatalf("get %s via %d: %v", key, id, err)
		}
	}
}

// mustCAS compare-and-sets key through member id. After an unknown
// outcome it reads the key: holding value means the CAS took effect (the
// values tests use are unique), otherwise it is tried again.
func (c *procCluster) mustCAS(t *testing.T, id uint64, key string, expect *string, value string) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		var swapped bool
		err := retryWrite(ctx, func(ctx context.Context) error {
			var err error
			swapped, err = c.client.CompareAndSet(ctx, c.addr(id), key, expect, value)
			return err
		})
		if err == nil {
			return swapped
		}
		if kvservice.NotApplied(err) && !isNoLeader(err) || ctx.Err() != nil {
			t.Fatalf("cas %s via %d: %v", key, id, err)
		}
		t.Logf("cas %s via %d: %v; reading back", key, id, err)
		if got, ok := c.mustGet(t, id, key); ok && got == value {
			return true
		}
	}
}

// mustDelete deletes key through member id, retrying after an unknown
// outcome (a delete is idempotent).
func (c *procCluster) mustDelete(t *testing.T, id uint64, key string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		err := retryWrite(ctx, func(ctx context.Context) error { return c.client.Delete(ctx, c.addr(id), key) })
		if err == nil {
			return
		}
		if kvservice.NotApplied(err) && !isNoLeader(err) || ctx.Err() != nil {
			t.Fatalf("delete %s via %d: %v", key, id, err)
		}
	}
}
