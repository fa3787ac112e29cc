package shared

import (
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// procSample is what the process has used up to one moment: the runner
// takes one at each end of the measured window and reports the difference
// per commit, so that a run says what each commit cost (CPU, allocations,
// wake-ups) and how long its threads waited for a CPU, which on a shared
// machine explains most of the spread in commits/s.
type procSample struct {
	cpu     time.Duration // user + system time (getrusage)
	runq    time.Duration // time runnable but waiting for a CPU, all threads
	nvcsw   int64         // voluntary context switches (blocked: a wake-up)
	nivcsw  int64         // involuntary ones (preempted)
	rwCalls int64         // read and write system calls (/proc/self/io)
	numGC   uint32
	alloc   uint64 // bytes allocated on the heap (cumulative)
	mallocs uint64 // heap objects allocated (cumulative)
}

// sampleProc reads the process's counters. It stops the world briefly
// (runtime.ReadMemStats): call it only at the window's ends. Counters the
// system cannot tell are left at 0.
func sampleProc() procSample {
	var s procSample
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err == nil {
		s.cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		s.nvcsw, s.nivcsw = int64(ru.Nvcsw), int64(ru.Nivcsw)
	}
	s.runq = runQueueWait("/proc/self/task")
	if b, err := os.ReadFile("/proc/self/io"); err == nil {
		s.rwCalls = parseIOCalls(string(b))
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	s.numGC, s.alloc, s.mallocs = ms.NumGC, ms.TotalAlloc, ms.Mallocs
	return s
}

// runQueueWait sums, over the threads listed in dir (/proc/self/task), the
// time each spent runnable on a run queue without a CPU: the second field
// of the thread's schedstat. /proc/self/schedstat alone covers only the
// main thread. A thread that exits between two samples takes its share
// with it; the Go runtime seldom ends threads, so the difference holds.
func runQueueWait(dir string) time.Duration {
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return 0
	}
	var sum time.Duration
	for _, t := range tasks {
		b, err := os.ReadFile(filepath.Join(dir, t.Name(), "schedstat"))
		if err != nil {
			continue // the thread exited
		}
		if _, wait, ok := parseSchedstat(string(b)); ok {
			sum += wait
		}
	}
	return sum
}

// parseSchedstat parses a schedstat line: time on CPU (ns), time waiting
// on a run queue (ns), number of time slices.
func parseSchedstat(line string) (onCPU, wait time.Duration, ok bool) {
	f := strings.Fields(line)
	if len(f) < 2 {
		return 0, 0, false
	}
	run, err1 := strconv.ParseInt(f[0], 10, 64)
	waitNs, err2 := strconv.ParseInt(f[1], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, 0, false
	}
	return time.Duration(run), time.Duration(waitNs), true
}

// parseIOCalls returns syscr + syscw of a /proc/<pid>/io file: the read
// and write system calls (read, write, their vector and positioned forms,
// which is how sockets and the wal are read and written), or 0.
func parseIOCalls(io string) int64 {
	var n int64
	for _, line := range strings.Split(io, "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || (k != "syscr" && k != "syscw") {
			continue
		}
		c, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err == nil {
			n += c
		}
	}
	return n
}

// perCommit fills r's cost fields with what the process used between from
// and to, divided over r.Commits.
func (r *Result) perCommit(from, to procSample) {
	n := float64(r.Commits)
	if n == 0 {
		return
	}
	r.CPUUsPerCommit = float64((to.cpu - from.cpu).Microseconds()) / n
	r.RunqUsPerCommit = float64((to.runq - from.runq).Microseconds()) / n
	r.VolCSPerCommit = float64(to.nvcsw-from.nvcsw) / n
	r.InvolCSPerCommit = float64(to.nivcsw-from.nivcsw) / n
	r.RWCallsPerCommit = float64(to.rwCalls-from.rwCalls) / n
	r.GCs = int(to.numGC - from.numGC)
	r.AllocBytesPerCommit = float64(to.alloc-from.alloc) / n
	r.AllocsPerCommit = float64(to.mallocs-from.mallocs) / n
}
