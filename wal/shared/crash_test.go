package shared

import (
	"bufio"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/raftkit/raft"
	pb "github.com/raftkit/raft/raftpb"
)

// The crash test runs a multi-group workload in a child process (this test
// binary, re-executed), which prints "ack K" once action K returned. The
// parent SIGKILLs it after a random number of acks, reopens the WAL and
// checks that every group holds exactly the state after the last
// acknowledged action or, all groups together, after the one in flight.
// The next child continues from the recovered state in the same directory,
// with segments rotating, groups relocated, segments deleted, groups
// removed and created, all under kills.
const (
	crashDirEnv   = "SWAL_CRASH_DIR"
	crashSeedEnv  = "SWAL_CRASH_SEED"
	crashStartEnv = "SWAL_CRASH_START"
	crashGroups   = 12
)

var crashOptions = Options{SegmentSize: 16 << 10, MaxSegments: 3, GroupCacheSize: 1 << 10}

// crashTarget is what the workload drives: the WAL or the model.
type crashTarget interface {
	exists(id uint64) bool
	last(id uint64) uint64
	saveBatch([]GroupUpdate) error
	compact(id, i uint64) error
	create(id uint64) error
	remove(id uint64) error
}

// crashAction performs action k on t. What it does depends only on the
// seed, k and t's state, so the WAL and the model, in the same state, do
// the same.
func crashAction(t crashTarget, seed int64, k int) error {
	rng := rand.New(rand.NewSource(seed*1_000_003 + int64(k)))
	id := uint64(rng.Intn(crashGroups) + 1)
	switch {
	case k%40 == 39 && t.exists(id):
		return t.remove(id)
	case !t.exists(id):
		return t.create(id)
	case k%7 == 3:
		if last := t.last(id); last > 3 {
			if err := t.compact(id, last-2); !errors.Is(err, raft.ErrCompacted) {
				return err
			}
			return nil
		}
	}
	var ups []GroupUpdate
	for n := rng.Intn(5) + 1; n > 0; n-- {
		id := uint64(rng.Intn(crashGroups) + 1)
		if !t.exists(id) {
			continue
		}
		last := t.last(id)
		from := last + 1
		if last > 0 && rng.Intn(5) == 0 {
			from = last // overwrite the last entry
		}
		term := uint64(k)
		var es []pb.Entry
		for i := from; i < from+uint64(rng.Intn(3)+1); i++ {
			es = append(es, pb.Entry{Index: i, Term: term, Data: []byte(fmt.Sprintf("%d/%d/%d", id, i, k))})
		}
		ups = append(ups, GroupUpdate{GroupID: id, HardState: pb.HardState{Term: term, Vote: id, Commit: from - 1}, Entries: es})
		break // one update per group keeps the model simple
	}
	return t.saveBatch(ups)
}

type walTarget struct{ w *WAL }

func (t walTarget) exists(id uint64) bool { _, err := t.w.Group(id); return err == nil }
func (t walTarget) last(id uint64) uint64 {
	g, _ := t.w.Group(id)
	l, _ := g.LastIndex()
	return l
}
func (t walTarget) saveBatch(ups []GroupUpdate) error { return t.w.SaveBatch(ups) }
func (t walTarget) compact(id, i uint64) error {
	g, _ := t.w.Group(id)
	return g.Compact(i)
}
func (t walTarget) create(id uint64) error { return t.w.CreateGroups(id) }
func (t walTarget) remove(id uint64) error { return t.w.RemoveGroup(id) }

type modelTarget map[uint64]*raft.MemoryStorage

func (m modelTarget) exists(id uint64) bool { return m[id] != nil }
func (m modelTarget) last(id uint64) uint64 {
	l, _ := m[id].LastIndex()
	return l
}
func (m modelTarget) saveBatch(ups []GroupUpdate) error {
	for _, u := range ups {
		if err := m[u.GroupID].Append(u.Entries); err != nil {
			return err
		}
		if err := m[u.GroupID].SetHardState(u.HardState); err != nil {
			return err
		}
	}
	return nil
}
func (m modelTarget) compact(id, i uint64) error { return m[id].Compact(i) }
func (m modelTarget) create(id uint64) error     { m[id] = raft.NewMemoryStorage(); return nil }
func (m modelTarget) remove(id uint64) error     { delete(m, id); return nil }

// matches reports how w differs from the model, or nil.
func (m modelTarget) matches(w *WAL) error {
	ids := w.GroupIDs()
	var want []uint64
	for id := range m {
		want = append(want, id)
	}
	sort.Slice(want, func(a, b int) bool { return want[a] < want[b] })
	if fmt.Sprint(ids) != fmt.Sprint(want) {
		return fmt.Errorf("groups %v, model has %v", ids, want)
	}
	for _, id := range ids {
		g, _ := w.Group(id)
		ms := m[id]
		hsG, _, _ := g.InitialState()
		hsM, _, _ := ms.InitialState()
		fG, _ := g.FirstIndex()
		fM, _ := ms.FirstIndex()
		lG, _ := g.LastIndex()
		lM, _ := ms.LastIndex()
		if hsG != hsM || fG != fM || lG != lM {
			return fmt.Errorf("group %d: %+v [%d, %d], model %+v [%d, %d]", id, hsG, fG, lG, hsM, fM, lM)
		}
		if lM < fM {
			continue
		}
		eg, err := g.Entries(fG, lG+1, 1<<30)
		if err != nil {
			return fmt.Errorf("group %d: %v", id, err)
		}
		em, _ := ms.Entries(fM, lM+1, 1<<30)
		for k := range em {
			if eg[k].Term != em[k].Term || string(eg[k].Data) != string(em[k].Data) {
				return fmt.Errorf("group %d: entry %d differs", id, em[k].Index)
			}
		}
	}
	return nil
}

func envInt(t *testing.T, name string, def int) int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	require.NoError(t, err, name)
	return n
}

// TestCrashChild is the child's role; without the environment it skips.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("only runs as the child of TestCrashRecovery")
	}
	seed, start := int64(envInt(t, crashSeedEnv, 0)), envInt(t, crashStartEnv, 0)
	w, err := Open(dir, &crashOptions)
	if err != nil {
		fmt.Printf("error %v\n", err)
		os.Exit(3)
	}
	out := bufio.NewWriter(os.Stdout)
	for k := start + 1; k <= start+2000; k++ {
		if err := crashAction(walTarget{w}, seed, k); err != nil {
			fmt.Fprintf(out, "error %v\n", err)
			out.Flush()
			os.Exit(3)
		}
		fmt.Fprintf(out, "ack %d\n", k)
		out.Flush()
	}
	w.Close()
}

func TestCrashRecovery(t *testing.T) {
	if os.Getenv(crashDirEnv) != "" {
		t.Skip("child")
	}
	if testing.Short() {
		t.Skip("spawns processes")
	}
	iters := envInt(t, "SWAL_CRASH_ITERS", 30)
	seed := int64(envInt(t, crashSeedEnv, 11))
	rng := rand.New(rand.NewSource(seed))
	dir := t.TempDir()
	model := modelTarget{}
	done := 0
	for it := 0; it < iters; it++ {
		lastAck := runCrashChild(t, dir, seed, done, 1+rng.Intn(150))
		w, err := Open(dir, &crashOptions)
		require.NoError(t, err, "iteration %d: recovery after a kill at ack %d", it, lastAck)
		for k := done + 1; k <= lastAck; k++ {
			require.NoError(t, crashAction(model, seed, k))
		}
		if err := model.matches(w); err != nil {
			// The action in flight at the kill may have completed.
			require.NoError(t, crashAction(model, seed, lastAck+1))
			err2 := model.matches(w)
			require.NoError(t, err2, "iteration %d: neither the state after ack %d (%v) nor the next", it, lastAck, err)
			lastAck++
		}
		t.Logf("iteration %d: recovered action %d from %d segments", it, lastAck, len(w.SegmentPaths()))
		require.NoError(t, w.Close())
		done = lastAck
	}
}

// runCrashChild runs a child from action start, kills it after killAfter
// acknowledgements and returns the last acknowledged action.
func runCrashChild(t *testing.T, dir string, seed int64, start, killAfter int) int {
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashDirEnv+"="+dir,
		crashSeedEnv+"="+strconv.FormatInt(seed, 10), crashStartEnv+"="+strconv.Itoa(start))
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Start())
	lastAck, acks, killed := start, 0, false
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
	if err := cmd.Wait(); !killed {
		require.NoError(t, err, "child")
	}
	return lastAck
}
