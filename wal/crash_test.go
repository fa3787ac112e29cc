package wal

import (
	"bufio"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// The crash test runs the workload in a child process (this test binary,
// re-executed with crashChildEnv set), which prints "ack K" after action K
// returned, that is, after it was durable if it had to be. The parent
// SIGKILLs the child after a random number of acks, reopens the log and
// checks that it holds exactly the state after the last acknowledged
// action or after the one in flight: nothing acknowledged may be lost, and
// a half-done action must not show. The next child continues the workload
// from the recovered state, so recovery is followed by more writes, more
// crashes and more recoveries in the same directory.
const (
	crashChildEnv = "WAL_CRASH_CHILD_DIR"
	crashSeedEnv  = "WAL_CRASH_SEED"
	crashStartEnv = "WAL_CRASH_START"
)

// crashOptions makes rotation and segment deletion frequent.
var crashOptions = Options{SegmentSize: 16 << 10, CacheSize: 8 << 10}

func envInt(t *testing.T, name string, def int) int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	require.NoError(t, err, "%s", name)
	return n
}

// TestCrashChild is the child's role; without the environment it does
// nothing.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashChildEnv)
	if dir == "" {
		t.Skip("only runs as the child of TestCrashRecovery")
	}
	seed := int64(envInt(t, crashSeedEnv, 0))
	start := envInt(t, crashStartEnv, 0)
	s, err := Open(dir, &crashOptions)
	if err != nil {
		fmt.Printf("error %v\n", err)
		os.Exit(3)
	}
	out := bufio.NewWriter(os.Stdout)
	for k := start + 1; k <= start+1000; k++ {
		if err := runWorkload(s, seed, k-1, k, false); err != nil {
			fmt.Fprintf(out, "error %v\n", err)
			out.Flush()
			os.Exit(3)
		}
		fmt.Fprintf(out, "ack %d\n", k)
		out.Flush()
	}
	s.Close()
}

func TestCrashRecovery(t *testing.T) {
	if os.Getenv(crashChildEnv) != "" {
		t.Skip("child")
	}
	if testing.Short() {
		t.Skip("spawns processes")
	}
	iters := envInt(t, "WAL_CRASH_ITERS", 40)
	seed := int64(envInt(t, crashSeedEnv, 7))
	rng := rand.New(rand.NewSource(seed))
	dir := t.TempDir()
	done := 0 // actions the recovered log reflects
	spares := 0
	m := modelAt(seed, 0, 0)
	for it := 0; it < iters; it++ {
		killAfter := 1 + rng.Intn(120)
		lastAck, killed := runCrashChild(t, dir, seed, done, killAfter)

		s, err := Open(dir, &crashOptions)
		require.NoError(t, err, "iteration %d: recovery after a kill at ack %d", it, lastAck)
		if s.droppedSpare {
			spares++
		}
		require.NoError(t, runWorkload(m, seed, done, lastAck, false))
		matched := lastAck
		if err := sameState(s, m); err != nil {
			// The action in flight at the kill may have completed.
			require.NoError(t, runWorkload(m, seed, lastAck, lastAck+1, false))
			err2 := sameState(s, m)
			require.NoError(t, err2, "iteration %d: log is neither the state after ack %d (%v) nor the next", it, lastAck, err)
			matched = lastAck + 1
		}
		require.NoError(t, s.Close())
		t.Logf("iteration %d: killed=%v after %d acks; recovered action %d", it, killed, lastAck-done, matched)
		done = matched
	}
	// Kills that left a spare segment behind (its creation is timed by
	// the spare goroutine, so the count varies from run to run).
	t.Logf("%d of %d recoveries dropped an unused spare", spares, iters)
}

// runCrashChild runs a child from action start and kills it after
// killAfter acknowledgements; it returns the last acknowledged action.
func runCrashChild(t *testing.T, dir string, seed int64, start, killAfter int) (lastAck int, killed bool) {
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(),
		crashChildEnv+"="+dir,
		crashSeedEnv+"="+strconv.FormatInt(seed, 10),
		crashStartEnv+"="+strconv.Itoa(start),
	)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Start())
	lastAck = start
	acks := 0
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "error ") {
			t.Errorf("child: %s", line)
		}
		n, ok := strings.CutPrefix(line, "ack ")
		if !ok {
			continue
		}
		k, err := strconv.Atoi(n)
		require.NoError(t, err)
		require.Equal(t, lastAck+1, k, "acks out of order")
		lastAck = k
		if acks++; acks == killAfter {
			require.NoError(t, cmd.Process.Kill()) // SIGKILL
			killed = true
		}
	}
	err = cmd.Wait()
	if !killed {
		require.NoError(t, err, "child")
	}
	return lastAck, killed
}
