package main

import (
	"bufio"
	"errors"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// idleRun is a "raftkv idle" process whose output the test reads line by
// line.
type idleRun struct {
	cmd   *exec.Cmd
	lines chan string
	out   []string
	pids  []int
	dir   string
}

var (
	idlePidsRe = regexp.MustCompile(`members: pids (\d+) (\d+) (\d+)$`)
	idleDirRe  = regexp.MustCompile(`data in (\S+)$`)
	idleLineRe = regexp.MustCompile(`^IDLE: groups=(\d+) members=3 cpu=\d+\.\d\d mem_per_group=-?\d+$`)
)

func startIdle(t *testing.T, args ...string) *idleRun {
	t.Helper()
	cmd := exec.Command(testBin, append([]string{"idle"}, args...)...)
	cmd.Env = append(os.Environ(), "TMPDIR="+t.TempDir())
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r := &idleRun{cmd: cmd, lines: make(chan string, 100)}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			r.lines <- sc.Text()
		}
		close(r.lines)
	}()
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return r
}

// until reads lines until one contains s (and returns true), or the
// output ends.
func (r *idleRun) until(t *testing.T, s string) bool {
	t.Helper()
	for line := range r.lines {
		t.Log(line)
		r.out = append(r.out, line)
		if m := idlePidsRe.FindStringSubmatch(line); m != nil {
			for _, p := range m[1:] {
				pid, _ := strconv.Atoi(p)
				r.pids = append(r.pids, pid)
			}
		}
		if m := idleDirRe.FindStringSubmatch(line); m != nil {
			r.dir = m[1]
		}
		if s != "" && strings.Contains(line, s) {
			return true
		}
	}
	return false
}

// checkGone fails unless the members' processes and the data directory
// are gone.
func (r *idleRun) checkGone(t *testing.T) {
	t.Helper()
	if len(r.pids) != 3 || r.dir == "" {
		t.Fatalf("output names %d member pids and data dir %q", len(r.pids), r.dir)
	}
	for _, pid := range r.pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("member pid %d still exists after raftkv idle exited (kill 0: %v)", pid, err)
		}
	}
	if _, err := os.Stat(r.dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("data dir %s left behind (%v)", r.dir, err)
	}
}

// TestIdleCommand runs a small "raftkv idle" and checks its summary line
// and that it leaves no member process or data behind.
func TestIdleCommand(t *testing.T) {
	r := startIdle(t, "--groups", "200", "--wave", "100", "--duration", "2s", "--settle-timeout", "60s")
	r.until(t, "")
	if err := r.cmd.Wait(); err != nil {
		t.Fatalf("raftkv idle: %v", err)
	}
	if len(r.out) == 0 {
		t.Fatal("no output")
	}
	last := r.out[len(r.out)-1]
	if m := idleLineRe.FindStringSubmatch(last); m == nil || m[1] != "200" {
		t.Fatalf("last line %q, want IDLE: groups=200 members=3 cpu=<percent> mem_per_group=<bytes>", last)
	}
	r.checkGone(t)
}

// TestIdleInterrupted interrupts "raftkv idle" while it measures: it must
// stop its members, remove its data and exit without a summary.
func TestIdleInterrupted(t *testing.T) {
	r := startIdle(t, "--groups", "30", "--duration", "1h", "--settle-timeout", "60s")
	if !r.until(t, "measuring") {
		t.Fatal("raftkv idle ended before measuring")
	}
	if err := r.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { r.until(t, ""); done <- r.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("raftkv idle after Ctrl-C: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("raftkv idle did not exit within 30s of Ctrl-C")
	}
	for _, line := range r.out {
		if strings.HasPrefix(line, "IDLE:") {
			t.Errorf("summary printed after an interrupted run: %q", line)
		}
	}
	r.checkGone(t)
}
