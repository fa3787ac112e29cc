package shared

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestParseSchedstat(t *testing.T) {
	run, wait, ok := parseSchedstat("2081934 1203711 37\n")
	if !ok || run != 2081934 || wait != 1203711 {
		t.Fatalf("got %v %v %v", run, wait, ok)
	}
	for _, bad := range []string{"", "12", "x 12 3", "12 y 3"} {
		if _, _, ok := parseSchedstat(bad); ok {
			t.Errorf("%q parsed", bad)
		}
	}
}

// TestRunQueueWaitSumsThreads: the wait is the sum over every thread's
// schedstat, skipping threads whose file is gone or unreadable.
func TestRunQueueWaitSumsThreads(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{"101": "5 1000 1\n", "102": "7 2500 3\n", "103": "garbage"} {
		if err := os.MkdirAll(filepath.Join(dir, name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name, "schedstat"), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, "104"), 0o755); err != nil { // exited: no file
		t.Fatal(err)
	}
	if got := runQueueWait(dir); got != 3500 {
		t.Fatalf("runQueueWait = %v, want 3.5us", got)
	}
}

func TestParseIOCalls(t *testing.T) {
	io := "rchar: 6976\nwchar: 10\nsyscr: 10\nsyscw: 32\nread_bytes: 0\n"
	if n := parseIOCalls(io); n != 42 {
		t.Fatalf("parseIOCalls = %d, want 42", n)
	}
}

func TestLatencies(t *testing.T) {
	var lats []time.Duration
	for i := 1000; i >= 1; i-- {
		lats = append(lats, time.Duration(i)*time.Millisecond)
	}
	var r Result
	r.latencies(lats)
	if r.MeanMs != 500.5 || r.P50Ms != 501 || r.P99Ms != 991 || r.P999Ms != 1000 {
		t.Fatalf("mean %v p50 %v p99 %v p99.9 %v", r.MeanMs, r.P50Ms, r.P99Ms, r.P999Ms)
	}
}

func TestPerCommit(t *testing.T) {
	from := procSample{cpu: time.Second, runq: time.Second, nvcsw: 10, nivcsw: 1, rwCalls: 7, numGC: 3, alloc: 1000, mallocs: 10}
	to := procSample{cpu: 3 * time.Second, runq: 1500 * time.Millisecond, nvcsw: 4010, nivcsw: 201, rwCalls: 1507, numGC: 5, alloc: 9001000, mallocs: 20010}
	r := Result{Commits: 1000}
	r.perCommit(from, to)
	want := Result{Commits: 1000, CPUUsPerCommit: 2000, RunqUsPerCommit: 500, VolCSPerCommit: 4,
		InvolCSPerCommit: 0.2, RWCallsPerCommit: 1.5, GCs: 2, AllocBytesPerCommit: 9000, AllocsPerCommit: 20}
	if r != want {
		t.Fatalf("got %+v\nwant %+v", r, want)
	}
}

// TestSampleProcReadsThisProcess: on Linux every counter the runner
// reports moves while the process works and sleeps.
func TestSampleProcReadsThisProcess(t *testing.T) {
	if _, err := os.Stat("/proc/self/task"); err != nil {
		t.Skip("no /proc")
	}
	from := sampleProc()
	var sink [][]byte
	for i := 0; i < 1000; i++ {
		sink = append(sink, make([]byte, 1024))
	}
	time.Sleep(time.Millisecond)
	to := sampleProc()
	if to.alloc-from.alloc < 1000*1024 || to.mallocs-from.mallocs < 1000 || to.nvcsw <= from.nvcsw {
		t.Fatalf("from %+v to %+v (%d buffers)", from, to, len(sink))
	}
}
