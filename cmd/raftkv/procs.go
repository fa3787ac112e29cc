package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/raftkit/raft/kvservice"
)

// layout is what a cluster directory records about its members, so that
// running the same command again starts the same members on the same
// addresses and they resume from their data.
type layout struct {
	ClusterID uint64             `json:"cluster_id"`
	Members   []kvservice.Member `json:"members"`
	// ServeArgs are extra flags every member is started with.
	ServeArgs []string `json:"serve_args,omitempty"`
}

// shards returns the shard count the members run with: the --shards of
// ServeArgs, 1 without.
func (l layout) shards() int {
	n := 1
	for i, a := range l.ServeArgs {
		if a == "--shards" && i+1 < len(l.ServeArgs) {
			if v, err := strconv.Atoi(l.ServeArgs[i+1]); err == nil {
				n = v
			}
		}
	}
	return n
}

// procCluster runs members as child processes of the raftkv binary.
type procCluster struct {
	bin    string
	dir    string
	layout layout
	procs  map[uint64]*memberProc
	client kvservice.Client
	// exits receives a member's ID when its process ends, so that a
	// watcher learns of it at once instead of at its next poll.
	exits chan uint64
}

type memberProc struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when the process exited
	err  error         // its exit status, once done
	log  *os.File
	tail *tailBuffer // the last lines the member wrote, for error reports
}

// tailBuffer keeps the last bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
}

const tailBytes = 2048

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > tailBytes {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-tailBytes:]...)
	}
	return len(p), nil
}

// lastLines returns up to n complete last lines.
func (t *tailBuffer) lastLines(n int) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	lines := strings.Split(strings.TrimSpace(string(t.buf)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// exitError describes member id's exit with the last lines it wrote.
func (c *procCluster) exitError(id uint64) error {
	p := c.procs[id]
	if p == nil {
		return fmt.Errorf("member %d is not running", id)
	}
	return fmt.Errorf("member %d exited (%v); last lines of %s:\n%s", id, p.err,
		filepath.Join(c.dir, fmt.Sprintf("node%d.log", id)), p.tail.lastLines(5))
}

// loadOrCreateLayout reads dir/cluster.json, or writes a new layout for n
// members on 127.0.0.1 with consecutive ports from httpPort and peerPort
// (0: free ports picked now).
func loadOrCreateLayout(dir string, n, httpPort, peerPort int, clusterID uint64, serveArgs []string) (layout, bool, error) {
	path := filepath.Join(dir, "cluster.json")
	if b, err := os.ReadFile(path); err == nil {
		var l layout
		if err := json.Unmarshal(b, &l); err != nil {
			return l, false, fmt.Errorf("%s: %w", path, err)
		}
		return l, true, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return layout{}, false, err
	}
	l := layout{ClusterID: clusterID, ServeArgs: serveArgs}
	// Free ports are held open until all are picked: closed at once, the
	// kernel may hand the same port out twice (two members once got one
	// raft address).
	var held portHolder
	defer held.release()
	for i := 1; i <= n; i++ {
		m := kvservice.Member{ID: uint64(i)}
		var err error
		if m.HTTPAddr, err = held.addr(httpPort, i); err != nil {
			return l, false, err
		}
		if m.PeerAddr, err = held.addr(peerPort, i); err != nil {
			return l, false, err
		}
		l.Members = append(l.Members, m)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return l, false, err
	}
	b, _ := json.MarshalIndent(l, "", "  ")
	return l, false, os.WriteFile(path, b, 0o644)
}

// portHolder picks loopback addresses: base+i-1 when a base port is given,
// else a free port, whose listener it keeps open until release so that no
// two picks get the same port.
type portHolder []net.Listener

// The range free ports are picked from: below Linux's ephemeral ports
// (32768-60999 by default). A member restarted later binds its port again;
// an ephemeral port may by then be the local port of any outgoing
// connection on the machine, and the restart would fail with "address
// already in use". Below internal/testport's range too (20000-32767),
// which the kvservice tests take ports from, claimed with lock files this
// picker does not take: with one range shared, a member these tests (run
// alongside, as "go test ./..." does) started or restarted could find its
// port taken by the other process's member, stopped or not yet started
// when the other picked it.
const (
	pickLow  = 10000
	pickHigh = 20000
)

func (h *portHolder) addr(base, i int) (string, error) {
	if base != 0 {
		return net.JoinHostPort("127.0.0.1", strconv.Itoa(base+i-1)), nil
	}
	for range 200 {
		port := pickLow + rand.IntN(pickHigh-pickLow)
		if ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port))); err == nil {
			*h = append(*h, ln)
			return ln.Addr().String(), nil
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0") // the low range is full: any port
	if err != nil {
		return "", err
	}
	*h = append(*h, ln)
	return ln.Addr().String(), nil
}

// release closes the held listeners, freeing their ports for the members.
func (h *portHolder) release() {
	for _, ln := range *h {
		ln.Close()
	}
	*h = nil
}

func newProcCluster(bin, dir string, l layout) *procCluster {
	return &procCluster{bin: bin, dir: dir, layout: l, procs: map[uint64]*memberProc{},
		client: kvservice.Client{}, exits: make(chan uint64, 16)}
}

func (c *procCluster) member(id uint64) kvservice.Member {
	for _, m := range c.layout.Members {
		if m.ID == id {
			return m
		}
	}
	return kvservice.Member{}
}

// nextMember returns the member after id in ID order, the first after
// the last.
func (c *procCluster) nextMember(id uint64) uint64 {
	ids := c.ids()
	for _, m := range ids {
		if m > id {
			return m
		}
	}
	return ids[0]
}

func (c *procCluster) memberDir(id uint64) string {
	return filepath.Join(c.dir, fmt.Sprintf("node%d", id))
}

// start launches member id. Members in the layout bootstrap with the
// layout as the initial cluster; extra members (added at runtime) join
// through the layout's members.
func (c *procCluster) start(id uint64, extra ...string) error {
	return c.startWith(id, "--initial-cluster", kvservice.FormatMembers(c.layout.Members), extra...)
}

func (c *procCluster) startWith(id uint64, membersFlag, members string, extra ...string) error {
	m := c.member(id)
	if m.ID == 0 {
		return fmt.Errorf("member %d is not in the layout", id)
	}
	if p := c.procs[id]; p != nil {
		select {
		case <-p.done:
		default:
			return fmt.Errorf("member %d is already running", id)
		}
	}
	if err := os.MkdirAll(c.dir, 0o755); err != nil {
		return err
	}
	logf, err := os.OpenFile(filepath.Join(c.dir, fmt.Sprintf("node%d.log", id)), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	args := []string{"serve",
		"--id", strconv.FormatUint(id, 10),
		"--cluster-id", strconv.FormatUint(c.layout.ClusterID, 16),
		"--dir", c.memberDir(id),
		"--peer-addr", m.PeerAddr,
		"--http-addr", m.HTTPAddr,
		membersFlag, members,
	}
	args = append(append(args, c.layout.ServeArgs...), extra...)
	cmd := exec.Command(c.bin, args...)
	tail := &tailBuffer{}
	cmd.Stdout = logf
	cmd.Stderr = io.MultiWriter(logf, tail)
	// Own process group: a Ctrl-C in the terminal reaches the parent,
	// which then stops its members in order.
	// Pdeathsig: members never outlive a crashed parent.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return err
	}
	p := &memberProc{cmd: cmd, done: make(chan struct{}), log: logf, tail: tail}
	go func() {
		p.err = cmd.Wait()
		logf.Close()
		close(p.done)
		select {
		case c.exits <- id:
		default: // nobody is watching closely; running() still tells
		}
	}()
	c.procs[id] = p
	return nil
}

// running reports whether member id's process is alive.
func (c *procCluster) running(id uint64) bool {
	p := c.procs[id]
	if p == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// kill SIGKILLs member id and waits for it to be gone.
func (c *procCluster) kill(id uint64) {
	if p := c.procs[id]; p != nil {
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// stop asks member id to stop (SIGTERM) and kills it if it takes longer
// than a few seconds.
func (c *procCluster) stop(id uint64) {
	p := c.procs[id]
	if p == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		c.kill(id)
	}
}

// signalAll sends sig to every running member, when they profile
// themselves (RAFTKV_CPUPROFILE_DIR, profile.go): otherwise SIGUSR1 and
// SIGUSR2 would end them.
func (c *procCluster) signalAll(sig syscall.Signal) {
	if os.Getenv("RAFTKV_CPUPROFILE_DIR") == "" {
		return
	}
	for id, p := range c.procs {
		if c.running(id) {
			_ = p.cmd.Process.Signal(sig)
		}
	}
}

func (c *procCluster) stopAll() {
	for id := range c.procs {
		c.stop(id)
	}
}

// waitLeader polls the given members until a majority of those that answer
// agree on a leader that is itself among them and running, and returns it.
// Only answers from our own members count: a process of another cluster
// listening on a member's address (its ID or cluster ID differs) does not.
func (c *procCluster) waitLeader(ctx context.Context, ids ...uint64) (uint64, error) {
	wantCID := strconv.FormatUint(c.layout.ClusterID, 16)
	for {
		votes := map[uint64]int{}
		for _, id := range ids {
			sctx, cancel := context.WithTimeout(ctx, time.Second)
			st, err := c.client.Status(sctx, c.member(id).HTTPAddr)
			cancel()
			if err == nil && st.Leader != 0 && c.allShardsLed(st) && st.ID == id && st.ClusterID == wantCID && c.running(id) {
				votes[st.Leader]++
			}
		}
		for lead, n := range votes {
			if n > len(ids)/2 && c.running(lead) {
				return lead, nil
			}
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("no leader among members %v: %w", ids, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// waitCaughtUp polls member id until it has applied what ref (another
// member's status) had committed, shard by shard on a sharded cluster.
func (c *procCluster) waitCaughtUp(ctx context.Context, id uint64, ref kvservice.Status) (kvservice.Status, error) {
	for {
		sctx, cancel := context.WithTimeout(ctx, time.Second)
		st, err := c.client.Status(sctx, c.member(id).HTTPAddr)
		cancel()
		if err == nil && caughtUp(st, ref) {
			return st, nil
		}
		select {
		case <-ctx.Done():
			return st, fmt.Errorf("member %d applied %d, want %d: %w", id, st.Applied, ref.Commit, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// caughtUp reports whether st applied everything ref committed.
func caughtUp(st, ref kvservice.Status) bool {
	if len(ref.Shards) == 0 {
		return st.Applied >= ref.Commit
	}
	if len(st.Shards) != len(ref.Shards) {
		return false
	}
	for i, sh := range ref.Shards {
		if st.Shards[i].Applied < sh.Commit {
			return false
		}
	}
	return true
}

// allShardsLed reports whether a member knows a running leader for every
// shard it hosts (true for a member of one group).
func (c *procCluster) allShardsLed(st kvservice.Status) bool {
	for _, sh := range st.Shards {
		if sh.Leader == 0 || !c.running(sh.Leader) {
			return false
		}
	}
	return true
}
