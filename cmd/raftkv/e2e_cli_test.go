package main

import (
	"bufio"
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/raftkit/raft/kvservice"
)

// cliRun is a raftkv command running in the background, its output
// collected line by line.
type cliRun struct {
	cmd   *exec.Cmd
	mu    sync.Mutex
	out   []string
	seen  chan struct{} // closed when a line containing want appears
	want  string
	done  chan struct{}
	err   error
	fired bool
}

// startCLI runs the test binary with args and reports (through seen) the
// first output line containing want.
func startCLI(t *testing.T, env []string, want string, args ...string) *cliRun {
	t.Helper()
	cmd := exec.Command(testBin, args...)
	cmd.Env = append(os.Environ(), env...)
	return startCmd(t, cmd, want)
}

func startCmd(t *testing.T, cmd *exec.Cmd, want string) *cliRun {
	t.Helper()
	r := &cliRun{cmd: cmd, seen: make(chan struct{}), want: want, done: make(chan struct{})}
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	r.cmd.Stdout, r.cmd.Stderr = pw, pw
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			r.mu.Lock()
			r.out = append(r.out, sc.Text())
			if !r.fired && want != "" && strings.Contains(sc.Text(), want) {
				r.fired = true
				close(r.seen)
			}
			r.mu.Unlock()
		}
	}()
	go func() {
		r.err = r.cmd.Wait()
		// Collect the last lines, unless an orphaned child (the failure
		// some tests look for) still holds the pipe open.
		select {
		case <-scanned:
		case <-time.After(2 * time.Second):
		}
		close(r.done)
	}()
	t.Cleanup(func() {
		_ = r.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-r.done:
		case <-time.After(15 * time.Second):
			_ = r.cmd.Process.Kill()
			<-r.done
		}
	})
	return r
}

func (r *cliRun) output() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.out, "\n")
}

// waitSeen waits for the wanted line, failing if the command exits first.
func (r *cliRun) waitSeen(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case <-r.seen:
	case <-r.done:
		t.Fatalf("exited (%v) before printing %q:\n%s", r.err, r.want, r.output())
	case <-time.After(d):
		t.Fatalf("no %q after %v:\n%s", r.want, d, r.output())
	}
}

// waitExit waits at most d for the command to exit and returns its status.
func (r *cliRun) waitExit(t *testing.T, d time.Duration) error {
	t.Helper()
	select {
	case <-r.done:
		return r.err
	case <-time.After(d):
		t.Fatalf("still running after %v:\n%s", d, r.output())
		return nil
	}
}

// refused reports whether nothing listens on addr any more.
func refused(addr string) bool {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err == nil {
		conn.Close()
		return false
	}
	return true
}

func clusterAddrs(t *testing.T, dir string) []string {
	t.Helper()
	l, _, err := loadOrCreateLayout(dir, 0, 0, 0, 0, nil)
	if err != nil || len(l.Members) == 0 {
		t.Fatalf("layout in %s: %+v %v", dir, l, err)
	}
	var addrs []string
	for _, m := range l.Members {
		addrs = append(addrs, m.HTTPAddr, m.PeerAddr)
	}
	return addrs
}

// TestClusterCommand starts "raftkv cluster", then a second one on the same
// directory and ports, which must fail within seconds with its member's
// own error rather than report the first cluster's leader; then SIGTERM
// stops the first cluster and all its members.
func TestClusterCommand(t *testing.T) {
	dir := t.TempDir()
	args := []string{"cluster", "--dir", dir, "--http-port", "0", "--peer-port", "0", "--progress", "1h"}
	first := startCLI(t, nil, "leader elected", args...)
	first.waitSeen(t, 60*time.Second)

	second := startCLI(t, nil, "", args...)
	err := second.waitExit(t, 30*time.Second)
	out := second.output()
	if err == nil || strings.Contains(out, "leader elected") {
		t.Fatalf("second cluster on the same ports and dir: exit %v\n%s", err, out)
	}
	if !strings.Contains(out, "address already in use") && !strings.Contains(out, "directory is locked") {
		t.Fatalf("second cluster does not show its member's error:\n%s", out)
	}

	// The first cluster is unharmed, and SIGTERM stops it with its members.
	if !strings.Contains(first.output(), "leader elected") {
		t.Fatal("first cluster lost")
	}
	if err := first.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := first.waitExit(t, 30*time.Second); err != nil {
		t.Fatalf("cluster after SIGTERM: %v\n%s", err, first.output())
	}
	for _, a := range clusterAddrs(t, dir) {
		if !refused(a) {
			t.Fatalf("%s still listens after the cluster stopped: a member was orphaned", a)
		}
	}
}

// TestClusterMembersDieWithIt SIGKILLs "raftkv cluster" (what happens to
// the binary when it cannot forward anything): its members must not
// outlive it.
func TestClusterMembersDieWithIt(t *testing.T) {
	dir := t.TempDir()
	r := startCLI(t, nil, "leader elected", "cluster", "--dir", dir, "--http-port", "0", "--peer-port", "0", "--progress", "1h")
	r.waitSeen(t, 60*time.Second)
	_ = r.cmd.Process.Kill()
	<-r.done
	for _, a := range clusterAddrs(t, dir) {
		waitFor(t, 15*time.Second, a+" to stop listening", func() bool { return refused(a) })
	}
}

// TestClusterMemberExit: a member that exits while the cluster runs makes
// "raftkv cluster" stop at once with that member's error.
func TestClusterMemberExit(t *testing.T) {
	dir := t.TempDir()
	r := startCLI(t, nil, "Ctrl-C stops", "cluster", "--dir", dir, "--http-port", "0", "--peer-port", "0", "--progress", "1h")
	r.waitSeen(t, 60*time.Second)
	l, _, err := loadOrCreateLayout(dir, 0, 0, 0, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Removing member 3 makes it exit on its own.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl := kvservice.Client{}
	if err := retryWrite(ctx, func(ctx context.Context) error { return cl.RemoveMember(ctx, l.Members[0].HTTPAddr, 3) }); err != nil {
		t.Fatal(err)
	}
	err = r.waitExit(t, 30*time.Second)
	if err == nil || !strings.Contains(r.output(), "member 3 exited") {
		t.Fatalf("cluster after its member 3 exited: %v\n%s", err, r.output())
	}
}

// TestCLIArguments: mistakes on the command line get a clear error.
func TestCLIArguments(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"cluster", "/tmp/x"}, `unexpected argument "/tmp/x"`},
		{[]string{"load", "--duration", "1s", "extra"}, `unexpected argument "extra"`},
		{[]string{"load", "--duration", "1s", "--via", "any"}, `--via "any": want leader or follower`},
		{[]string{"compare", "--shards", "1,x"}, `want shard counts of at least 1`},
		{[]string{"compare", "--rounds", "0"}, `--rounds 0: want at least 1`},
		{[]string{"serve", "--id", "1", "--cluster-id", "1", "/tmp/x"}, `unexpected argument "/tmp/x"`},
		{[]string{"serve", "--id", "1", "--dir", "d"}, "--cluster-id is required"},
		{[]string{"serve", "--id", "1", "--cluster-id", "1", "--max-value-size", "0"}, "--max-value-size 0: want"},
	} {
		out, err := exec.Command(testBin, tc.args...).CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || !strings.Contains(string(out), tc.want) {
			t.Errorf("raftkv %v: %v, output %q, want an error with %q", tc.args, err, out, tc.want)
		}
	}
}

// TestMaxValueSize: --max-value-size bounds what a member accepts.
func TestMaxValueSize(t *testing.T) {
	c, lead := newTestCluster(t, 1, "--max-value-size", "100")
	c.mustPut(t, lead, "small", strings.Repeat("x", 50))
	err := c.client.Put(context.Background(), c.addr(lead), "big", strings.Repeat("x", 200))
	var e *kvservice.APIError
	if !errors.As(err, &e) || e.Code != 413 {
		t.Fatalf("200-byte value with --max-value-size 100: %v, want HTTP 413", err)
	}
}

// TestLoadInterrupted: Ctrl-C during "raftkv load" prints the summary so
// far and removes the temporary directory.
func TestLoadInterrupted(t *testing.T) {
	tmp := t.TempDir()
	r := startCLI(t, []string{"TMPDIR=" + tmp}, "writing through", "load", "--duration", "1h", "--clients", "2")
	r.waitSeen(t, 60*time.Second)
	if err := r.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if err := r.waitExit(t, 30*time.Second); err != nil {
		t.Fatalf("load after SIGINT: %v\n%s", err, r.output())
	}
	if !strings.Contains(r.output(), "interrupted; so far:") {
		t.Fatalf("no summary after SIGINT:\n%s", r.output())
	}
	left, _ := filepath.Glob(filepath.Join(tmp, "raftkv-load-*"))
	if len(left) > 0 {
		t.Fatalf("load left %v behind", left)
	}
}

// TestClusterStopsWithGoRun: a cluster run by "go run" (a binary under a
// go-build directory) stops with its members when its parent dies, since
// go run exits on SIGTERM without passing it on.
func TestClusterStopsWithGoRun(t *testing.T) {
	exe := filepath.Join(t.TempDir(), "go-build1234", "b001", "exe", "raftkv")
	if err := os.MkdirAll(filepath.Dir(exe), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(testBin, exe); err != nil {
		b, err := os.ReadFile(testBin)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(exe, b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	// "; true" makes the shell fork rather than exec, standing in for go run.
	sh := exec.Command("sh", "-c", `"$0" cluster --dir "$1" --http-port 0 --peer-port 0 --progress 1h; true`, exe, dir)
	r := startCmd(t, sh, "leader elected")
	r.waitSeen(t, 60*time.Second)
	_ = r.cmd.Process.Kill() // the shell only; the cluster is its child
	for _, a := range clusterAddrs(t, dir) {
		waitFor(t, 30*time.Second, a+" to stop listening", func() bool { return refused(a) })
	}
}
