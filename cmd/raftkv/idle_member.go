package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/raftkit/raft/multiraft"
	"github.com/raftkit/raft/multiraft/walstore"
	"github.com/raftkit/raft/raftpb"
	"github.com/raftkit/raft/transport"
	"github.com/raftkit/raft/wal/shared"

	"github.com/raftkit/raft"
)

// idleMembers is the number of members "raftkv idle" starts.
const idleMembers = 3

// idleClusterID is the cluster ID of the members' batch streams.
const idleClusterID = 0x1d1e

// idleMember is one member process of "raftkv idle": a multiraft Host on a
// NetTransport over loopback, all its groups in one shared WAL. The parent
// drives it with one command per line on stdin and reads one answer line
// per command on stdout (see runIdleMember); stdin's end stops it.
type idleMember struct {
	id      multiraft.HostID
	groups  int
	quiesce bool

	w  *shared.WAL
	nt *multiraft.NetTransport
	h  *multiraft.Host

	baseHeap, baseRSS uint64
}

// nopApp is the members' application: idle groups apply nothing but
// their bootstrap configuration and their leaders' empty entries.
type nopApp struct{}

func (nopApp) Apply(multiraft.GroupID, []raftpb.Entry)           {}
func (nopApp) ReadIndexDone(multiraft.GroupID, []raft.ReadState) {}
func (nopApp) Restore(multiraft.GroupID, raftpb.Snapshot) error  { return nil }

// runIdleMember is the hidden "idle-member" command, started by "raftkv
// idle" once per member.
func runIdleMember(args []string) error {
	fs := flag.NewFlagSet("idle-member", flag.ExitOnError)
	id := fs.Uint64("id", 0, "member ID, 1 to 3")
	dir := fs.String("dir", "", "directory of the member's shared WAL")
	groups := fs.Int("groups", 1000, "number of groups")
	noQuiesce := fs.Bool("no-quiesce", false, "keep every group ticking")
	tick := fs.Duration("tick", 100*time.Millisecond, "tick interval")
	workers := fs.Int("workers", 2, "worker goroutines")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *id < 1 || *id > idleMembers || *dir == "" || *groups < 1 {
		return fmt.Errorf("idle-member: need --id 1..%d, --dir and --groups > 0", idleMembers)
	}
	m := &idleMember{id: *id, groups: *groups, quiesce: !*noQuiesce}
	if err := m.start(*dir, *tick, *workers); err != nil {
		return err
	}
	defer m.close()
	fmt.Printf("addr %s\n", m.nt.Addr())
	return m.serve(os.Stdin, os.Stdout)
}

func (m *idleMember) start(dir string, tick time.Duration, workers int) error {
	w, err := shared.Open(dir, nil)
	if err != nil {
		return err
	}
	nt, err := multiraft.NewNetTransport(multiraft.NetConfig{ListenAddr: "127.0.0.1:0",
		Stream: transport.BatchStreamConfig{ClusterID: idleClusterID, ID: m.id}})
	if err != nil {
		w.Close()
		return err
	}
	var peers []multiraft.HostID
	for p := multiraft.HostID(1); p <= idleMembers; p++ {
		if p != m.id {
			peers = append(peers, p)
		}
	}
	h, err := multiraft.New(multiraft.HostConfig{ID: m.id, Peers: peers, Storage: walstore.New(w),
		Transport: nt, App: nopApp{}, Workers: workers, TickInterval: tick,
		CheckQuorum: true, PreVote: true, DisableQuiescence: !m.quiesce})
	if err != nil {
		nt.Close()
		w.Close()
		return err
	}
	nt.Serve(h)
	m.w, m.nt, m.h = w, nt, h
	return nil
}

func (m *idleMember) close() {
	_ = m.h.Close()
	_ = m.nt.Close()
	_ = m.w.Close()
}

// serve answers commands until in ends. Every answer is one line starting
// with the command's name, or "error <text>".
func (m *idleMember) serve(in io.Reader, out io.Writer) error {
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		answer, err := m.command(f[0], f[1:])
		if err != nil {
			answer = "error " + strings.ReplaceAll(err.Error(), "\n", " ")
		} else {
			answer = f[0] + " " + answer
		}
		if _, err := fmt.Fprintln(out, answer); err != nil {
			return err
		}
	}
	return sc.Err()
}

func (m *idleMember) command(cmd string, args []string) (string, error) {
	switch cmd {
	case "peers": // peers 1=ADDR 2=ADDR ...
		return "ok", m.addPeers(args)
	case "create", "campaign", "settled": // create|campaign|settled FIRST LAST
		lo, hi, err := groupRange(args, m.groups)
		if err != nil {
			return "", err
		}
		switch cmd {
		case "create":
			return m.create(lo, hi)
		case "campaign":
			return m.campaign(lo, hi)
		}
		return m.settled(lo, hi), nil
	case "mem":
		heap, rss := memNow()
		return fmt.Sprintf("%d %d %d %d", m.baseHeap, heap, m.baseRSS, rss), nil
	case "cpu":
		return strconv.FormatInt(cpuNanos(), 10), nil
	case "stats":
		s := m.h.Stats()
		return fmt.Sprintf("groups=%d awake=%d quiesces=%d wakes=%d rounds=%d batches_in=%d fsyncs=%d",
			s.Groups, s.Awake, s.Quiesces, s.Wakes, s.Rounds, s.BatchesIn, m.w.Stats().Fsyncs), nil
	}
	return "", fmt.Errorf("unknown command %q", cmd)
}

func (m *idleMember) addPeers(args []string) error {
	for _, a := range args {
		k, addr, ok := strings.Cut(a, "=")
		id, err := strconv.ParseUint(k, 10, 64)
		if !ok || err != nil {
			return fmt.Errorf("bad peer %q, want ID=ADDR", a)
		}
		if id != m.id {
			m.nt.AddPeer(id, addr)
		}
	}
	return nil
}

// groupRange parses "FIRST LAST", a range of group IDs within 1..n.
func groupRange(args []string, n int) (lo, hi int, err error) {
	if len(args) == 2 {
		lo, err = strconv.Atoi(args[0])
		if err == nil {
			hi, err = strconv.Atoi(args[1])
		}
	}
	if len(args) != 2 || err != nil || lo < 1 || hi < lo || hi > n {
		return 0, 0, fmt.Errorf("bad group range %q, want FIRST LAST within 1..%d", args, n)
	}
	return lo, hi, nil
}

// create creates groups lo..hi, all with the three members. Before the
// first, it records the memory in use.
func (m *idleMember) create(lo, hi int) (string, error) {
	if lo == 1 {
		m.baseHeap, m.baseRSS = memNow()
	}
	start := time.Now()
	members := []multiraft.HostID{1, 2, 3}
	for g := lo; g <= hi; g++ {
		if err := m.h.CreateGroup(multiraft.GroupConfig{ID: multiraft.GroupID(g), Members: members}); err != nil {
			return "", err
		}
	}
	return time.Since(start).Round(time.Millisecond).String(), nil
}

// campaign starts an election in this member's share of the groups, so
// that the leaders spread evenly.
func (m *idleMember) campaign(lo, hi int) (string, error) {
	n := 0
	for g := lo; g <= hi; g++ {
		if uint64(g%idleMembers)+1 == m.id {
			if err := m.h.Campaign(multiraft.GroupID(g)); err != nil {
				return "", err
			}
			n++
		}
	}
	return strconv.Itoa(n), nil
}

// settled answers "yes" when every group of lo..hi has a leader here and, with
// quiescence, is quiesced here; otherwise the counts of groups without.
func (m *idleMember) settled(lo, hi int) string {
	noLead, awake, qNoLead := 0, 0, 0
	for g := lo; g <= hi; g++ {
		st, err := m.h.Status(multiraft.GroupID(g))
		switch {
		case err != nil || st.Lead == raft.None:
			noLead++
			if st.Quiesced {
				qNoLead++
			}
		case m.quiesce && !st.Quiesced:
			awake++
		}
	}
	if noLead == 0 && awake == 0 {
		return "yes"
	}
	s := m.h.Stats()
	return fmt.Sprintf("no leaderless=%d (quiesced %d) awake=%d ticking=%d", noLead, qNoLead, awake, s.Awake)
}

// memNow collects garbage and returns the live Go heap and the resident
// set size (0 where /proc is missing), in bytes.
func memNow() (heap, rss uint64) {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	if b, err := os.ReadFile("/proc/self/statm"); err == nil {
		if f := strings.Fields(string(b)); len(f) > 1 {
			pages, _ := strconv.ParseUint(f[1], 10, 64)
			rss = pages * uint64(os.Getpagesize())
		}
	}
	return ms.HeapAlloc, rss
}

// cpuNanos returns the CPU time (user and system) this process used.
func cpuNanos() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
