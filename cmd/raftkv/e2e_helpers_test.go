package main

import (
	"bufio"
	"context"
	"fmt"
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

// fastServeArgs make elections take a few hundred milliseconds.
var fastServeArgs = []string{"--tick", "20ms", "--election-ticks", "10", "--request-timeout", "3s"}

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

// mustPut writes through member id, retrying while there is certainly no
// leader; any other failure fails the test.
func (c *procCluster) mustPut(t *testing.T, id uint64, key, value string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := retryWrite(ctx, func(ctx context.Context) error { return c.client.Put(ctx, c.addr(id), key, value) }); err != nil {
		t.Fatalf("put %s via %d: %v", key, id, err)
	}
}

// mustCatchUp waits until member id applied what member ref has committed.
func (c *procCluster) mustCatchUp(t *testing.T, id, ref uint64) kvservice.Status {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := c.client.Status(ctx, c.addr(ref))
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.waitApplied(ctx, id, st.Commit)
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
