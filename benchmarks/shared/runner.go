package shared

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Result is what one run of one binary reports, as a JSON object on a line
// starting with "RESULT ".
type Result struct {
	Lib       string  `json:"lib"`
	Mode      string  `json:"mode"`
	Durable   bool    `json:"durable"`
	Proposers int     `json:"proposers"`
	Payload   int     `json:"payload"`
	Commits   int     `json:"commits"`
	PerSec    float64 `json:"commits_per_sec"`
	P50Ms     float64 `json:"p50_ms"`
	P99Ms     float64 `json:"p99_ms"`
	// MeanMs and P999Ms complete the latency picture: the mean weighs the
	// scheduling stalls that p50 hides, p99.9 the worst of them.
	MeanMs float64 `json:"mean_ms,omitempty"`
	P999Ms float64 `json:"p999_ms,omitempty"`
	// CPUUsPerCommit is the process's CPU time (user and system, all 3
	// voters and the proposers) over the measured window, per counted
	// commit, in microseconds: on a shared machine a steadier measure of
	// a library's cost than commits/s, which depends on the CPU it got.
	CPUUsPerCommit float64 `json:"cpu_us_per_commit,omitempty"`
	// RunqUsPerCommit is the time the process's threads spent runnable
	// but waiting for a CPU (schedstat's run delay, summed over threads)
	// over the measured window, per commit: how much of a run the machine
	// withheld. Two runs compare fairly only at similar run-queue wait.
	RunqUsPerCommit float64 `json:"runq_us_per_commit,omitempty"`
	// VolCSPerCommit and InvolCSPerCommit are the process's voluntary
	// context switches (a thread blocked, to be woken again) and
	// involuntary ones (preempted) per commit (getrusage).
	VolCSPerCommit   float64 `json:"vcsw_per_commit,omitempty"`
	InvolCSPerCommit float64 `json:"ivcsw_per_commit,omitempty"`
	// RWCallsPerCommit is the process's read and write system calls per
	// commit (socket and file alike; fsyncs are not counted).
	RWCallsPerCommit float64 `json:"rw_calls_per_commit,omitempty"`
	// GCs is the number of garbage collections in the measured window;
	// AllocBytesPerCommit and AllocsPerCommit the heap bytes and objects
	// the whole process allocated per commit (3 voters and the proposers).
	GCs                 int     `json:"gcs,omitempty"`
	AllocBytesPerCommit float64 `json:"alloc_bytes_per_commit,omitempty"`
	AllocsPerCommit     float64 `json:"allocs_per_commit,omitempty"`
	Errors              int64   `json:"errors"`
	FailoverMs          float64 `json:"failover_ms,omitempty"`
	RSSMiB              float64 `json:"rss_mib,omitempty"`
	HeapMiB             float64 `json:"heap_mib,omitempty"`
}

type runFlags struct {
	mode      string
	durable   bool
	proposers int
	payload   int
	duration  time.Duration
	warmup    time.Duration
	n         int
	dir       string
	port      int
	snapEvery uint64
	keep      uint64
	cpuProf   string
	memProf   string
	trace     string
	batch     bool
	async     bool
}

// Main parses the common flags, builds the library's cluster with build,
// runs the requested mode and prints the result line. Every binary's main
// is a call to Main.
func Main(lib string, build func(Options) (Cluster, error)) {
	var f runFlags
	flag.StringVar(&f.mode, "mode", "throughput", "throughput, failover or memory")
	flag.BoolVar(&f.durable, "durable", true, "production storage with fsync (false: in-memory storage)")
	flag.IntVar(&f.proposers, "proposers", 16, "concurrent proposers")
	flag.IntVar(&f.payload, "payload", 128, "payload bytes per proposal (>= 8)")
	flag.DurationVar(&f.duration, "duration", 5*time.Second, "measured time (throughput)")
	flag.DurationVar(&f.warmup, "warmup", time.Second, "unmeasured time before measuring (throughput)")
	flag.IntVar(&f.n, "n", 1000000, "committed proposals before reading RSS (memory)")
	flag.StringVar(&f.dir, "dir", "", "data directory (default: a new temporary one, removed at exit)")
	flag.IntVar(&f.port, "port", 23001, "first of 3 loopback ports")
	flag.Uint64Var(&f.snapEvery, "snapshot-every", 10000, "snapshot and compact after this many applied entries")
	flag.Uint64Var(&f.keep, "keep", 5000, "entries kept behind a snapshot")
	flag.StringVar(&f.cpuProf, "cpuprofile", "", "write a CPU profile of the measured run to this file")
	flag.StringVar(&f.memProf, "memprofile", "", "write a heap profile at the end of the run to this file")
	flag.StringVar(&f.trace, "trace", "", "write an execution trace of the run (after the first election) to this file")
	flag.BoolVar(&f.batch, "batch-proposals", true, "etcd-style drivers: hand concurrent proposals to raft as one MsgProp")
	flag.BoolVar(&f.async, "async-storage", true, "raftkit, fsync rows: Config.AsyncStorageWrites with wal.AppendThread (others ignore it)")
	flag.Parse()
	if err := run(lib, f, build); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", lib, err)
		os.Exit(1)
	}
	// Voters' goroutines may still be winding down; the result is out.
	os.Exit(0)
}

func run(lib string, f runFlags, build func(Options) (Cluster, error)) error {
	if f.payload < 8 {
		return fmt.Errorf("payload %d < 8", f.payload)
	}
	opts, cleanup, err := clusterOptions(lib, f)
	if err != nil {
		return err
	}
	defer cleanup()
	c, err := build(opts)
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := c.WaitLeader(ctx); err != nil {
		return fmt.Errorf("waiting for a leader: %w", err)
	}
	stopProfiles, err := startProfiles(f)
	if err != nil {
		return err
	}
	defer stopProfiles()
	res := Result{Lib: lib, Mode: f.mode, Durable: f.durable, Proposers: f.proposers, Payload: f.payload}
	switch f.mode {
	case "throughput":
		err = throughput(c, f, &res)
	case "failover":
		err = failover(c, f, &res)
	case "memory":
		err = memory(c, f, &res)
	default:
		err = fmt.Errorf("unknown mode %q", f.mode)
	}
	if err != nil {
		return err
	}
	if f.memProf != "" {
		if err := writeHeapProfile(f.memProf); err != nil {
			return err
		}
	}
	if st, ok := c.(interface{ Stats() string }); ok {
		fmt.Fprintf(os.Stderr, "%s stats: %s\n", lib, st.Stats())
	}
	b, _ := json.Marshal(res)
	fmt.Printf("RESULT %s\n", b)
	return nil
}

// clusterOptions makes the voters' data directories (under f.dir, or a
// temporary directory that cleanup removes) and the cluster's options.
func clusterOptions(lib string, f runFlags) (opts Options, cleanup func(), err error) {
	cleanup = func() {}
	dir := f.dir
	if dir == "" {
		d, err := os.MkdirTemp("", "crossbench-"+lib+"-")
		if err != nil {
			return opts, cleanup, err
		}
		cleanup = func() { os.RemoveAll(d) }
		dir = d
	}
	opts = Options{Dir: dir, Durable: f.durable, SnapshotEvery: f.snapEvery, KeepEntries: f.keep,
		BatchProposals: f.batch, AsyncStorage: f.async}
	for i := 0; i < 3; i++ {
		opts.Addrs = append(opts.Addrs, "127.0.0.1:"+strconv.Itoa(f.port+i))
		if err := os.MkdirAll(filepath.Join(dir, "n"+strconv.Itoa(i+1)), 0o755); err != nil {
			cleanup()
			return opts, func() {}, err
		}
	}
	return opts, cleanup, nil
}

// startProfiles starts the CPU profile and the execution trace that f asks
// for; stop ends both (call it even after an error: it stops what started).
func startProfiles(f runFlags) (stop func(), err error) {
	var stops []func()
	stop = func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}
	if f.cpuProf != "" {
		pf, err := os.Create(f.cpuProf)
		if err != nil {
			return stop, err
		}
		if err := pprof.StartCPUProfile(pf); err != nil {
			pf.Close()
			return stop, err
		}
		stops = append(stops, func() { pprof.StopCPUProfile(); pf.Close() })
	}
	if f.trace != "" {
		tf, err := os.Create(f.trace)
		if err != nil {
			return stop, err
		}
		if err := trace.Start(tf); err != nil {
			tf.Close()
			return stop, err
		}
		stops = append(stops, func() { trace.Stop(); tf.Close() })
	}
	return stop, nil
}

// writeHeapProfile writes a heap profile, after a GC, to path.
func writeHeapProfile(path string) error {
	pf, err := os.Create(path)
	if err != nil {
		return err
	}
	defer pf.Close()
	runtime.GC()
	return pprof.WriteHeapProfile(pf)
}

var nextID atomic.Uint64

// NewPayload returns a fresh payload of size bytes whose first 8 bytes are
// a process-unique ID (little endian), which etcd-style clusters use to find
// the proposer waiting for the entry. Fresh because libraries may keep
// the slice in their log.
func NewPayload(size int) []byte {
	b := make([]byte, size)
	binary.LittleEndian.PutUint64(b, nextID.Add(1))
	for i := 8; i < size; i++ {
		b[i] = byte(i)
	}
	return b
}

// PayloadID returns the ID NewPayload put in data, or 0.
func PayloadID(data []byte) uint64 {
	if len(data) < 8 {
		return 0
	}
	return binary.LittleEndian.Uint64(data)
}

func throughput(c Cluster, f runFlags, res *Result) error {
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		lats     []time.Duration
		errs     atomic.Int64
		stop     atomic.Bool
		start    = time.Now()
		measFrom = start.Add(f.warmup)
		measTo   = measFrom.Add(f.duration)
	)
	for p := 0; p < f.proposers; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var local []time.Duration
			for !stop.Load() {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				t0 := time.Now()
				err := c.Propose(ctx, NewPayload(f.payload))
				t1 := time.Now()
				cancel()
				if err != nil {
					errs.Add(1)
					continue
				}
				if !t0.Before(measFrom) && !t1.After(measTo) {
					local = append(local, t1.Sub(t0))
				}
			}
			mu.Lock()
			lats = append(lats, local...)
			mu.Unlock()
		}()
	}
	time.Sleep(time.Until(measFrom))
	from := sampleProc()
	time.Sleep(time.Until(measTo))
	to := sampleProc()
	stop.Store(true)
	wg.Wait()
	if len(lats) == 0 {
		return fmt.Errorf("no proposal committed in the measured window (%d errors)", errs.Load())
	}
	res.Commits = len(lats)
	res.PerSec = float64(len(lats)) / f.duration.Seconds()
	res.Errors = errs.Load()
	res.latencies(lats)
	res.perCommit(from, to)
	return nil
}

// latencies fills r's latency fields from the counted proposals' latencies
// (sorted here).
func (r *Result) latencies(lats []time.Duration) {
	if len(lats) == 0 {
		return
	}
	sort.Slice(lats, func(i, j int) bool { return lats[i] < lats[j] })
	var sum time.Duration
	for _, l := range lats {
		sum += l
	}
	r.MeanMs = ms(sum / time.Duration(len(lats)))
	r.P50Ms = ms(lats[len(lats)/2])
	r.P99Ms = ms(lats[len(lats)*99/100])
	r.P999Ms = ms(lats[len(lats)*999/1000])
}

// failover commits proposals from one proposer for a second, kills the
// leader, and measures from the kill until the first proposal submitted
// after it commits on the new leader.
func failover(c Cluster, f runFlags, res *Result) error {
	warm := time.Now().Add(time.Second)
	for time.Now().Before(warm) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := c.Propose(ctx, NewPayload(f.payload))
		cancel()
		if err != nil {
			return fmt.Errorf("before the kill: %w", err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	lead, err := c.WaitLeader(ctx)
	cancel()
	if err != nil {
		return err
	}
	t0 := time.Now()
	c.Kill(lead)
	deadline := t0.Add(30 * time.Second)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 250*time.Millisecond)
		err := c.Propose(ctx, NewPayload(f.payload))
		cancel()
		if err == nil {
			res.FailoverMs = ms(time.Since(t0))
			res.Commits = 1
			return nil
		}
		res.Errors++
		if errors.Is(err, ErrNoLeader) {
			// Refused at once (no leader yet): do not spin.
			time.Sleep(time.Millisecond)
		}
	}
	return fmt.Errorf("no commit within 30s of killing the leader")
}

// memory commits f.n proposals with f.proposers proposers and reads the
// process's resident set (the 3 voters live in this process).
func memory(c Cluster, f runFlags, res *Result) error {
	var (
		wg    sync.WaitGroup
		left  atomic.Int64
		errs  atomic.Int64
		start = time.Now()
	)
	left.Store(int64(f.n))
	for p := 0; p < f.proposers; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for left.Add(-1) >= 0 {
				for {
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					err := c.Propose(ctx, NewPayload(f.payload))
					cancel()
					if err == nil {
						break
					}
					if errs.Add(1) > 1000 {
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	if errs.Load() > 1000 {
		return fmt.Errorf("too many failed proposals")
	}
	res.Commits = f.n
	res.PerSec = float64(f.n) / time.Since(start).Seconds()
	res.Errors = errs.Load()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	res.HeapMiB = float64(ms.HeapInuse) / (1 << 20)
	res.RSSMiB = rssMiB()
	return nil
}

func rssMiB() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			fields := strings.Fields(line)
			if len(fields) >= 2 {
				kb, _ := strconv.ParseFloat(fields[1], 64)
				return kb / 1024
			}
		}
	}
	return 0
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
