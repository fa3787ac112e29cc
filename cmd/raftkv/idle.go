package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// idleFlags are the flags of "raftkv idle".
type idleFlags struct {
	groups    int
	duration  time.Duration
	noQuiesce bool
	tick      time.Duration
	workers   int
	timeout   time.Duration
	wave      int
}

// idleResult is what "raftkv idle" measured, averaged over the members.
type idleResult struct {
	groups      int
	cpuPercent  float64 // of one core, per member
	memPerGroup int64   // Go heap bytes per group
	rssPerGroup int64   // resident bytes per group
}

func (r idleResult) line() string {
	return fmt.Sprintf("IDLE: groups=%d members=%d cpu=%.2f mem_per_group=%d",
		r.groups, idleMembers, r.cpuPercent, r.memPerGroup)
}

// runIdle is "raftkv idle": it starts three member processes, creates the
// groups, waits until every group has a leader (and, with quiescence, is
// quiesced), then measures the members' CPU over --duration and their
// memory per group. Its last line is the IDLE summary.
func runIdle(args []string) error {
	fs := flag.NewFlagSet("idle", flag.ExitOnError)
	var f idleFlags
	fs.IntVar(&f.groups, "groups", 10000, "groups, each with all three members")
	fs.DurationVar(&f.duration, "duration", 30*time.Second, "how long to measure the idle members")
	fs.BoolVar(&f.noQuiesce, "no-quiesce", false, "turn quiescence off (every group keeps heartbeating)")
	fs.DurationVar(&f.tick, "tick", 100*time.Millisecond, "tick interval (heartbeat 1 tick, election 10)")
	fs.IntVar(&f.workers, "workers", 2, "worker goroutines per member")
	fs.DurationVar(&f.timeout, "settle-timeout", 10*time.Minute, "how long the groups may take to elect and quiesce")
	fs.IntVar(&f.wave, "wave", 1000, "groups created (and elected) at a time")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if f.groups < 1 || f.duration <= 0 || f.wave < 1 {
		return errors.New("idle: --groups, --duration and --wave must be positive")
	}
	// Ctrl-C or SIGTERM: the members are stopped and the temporary
	// directory removed by measureIdle's defers.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	stopWithParentUnderGoRun()
	r, err := measureIdle(ctx, f)
	if err != nil {
		if ctx.Err() != nil {
			say("interrupted")
			return nil
		}
		return err
	}
	say("memory per group: %d bytes of Go heap, %d bytes resident", r.memPerGroup, r.rssPerGroup)
	fmt.Println(r.line())
	return nil
}

func measureIdle(ctx context.Context, f idleFlags) (idleResult, error) {
	r := idleResult{groups: f.groups}
	bin, err := os.Executable()
	if err != nil {
		return r, err
	}
	tmp, err := os.MkdirTemp("", "raftkv-idle-")
	if err != nil {
		return r, err
	}
	defer os.RemoveAll(tmp)
	say("data in %s", tmp)
	ms := make([]*idleProc, idleMembers)
	defer func() {
		for _, m := range ms {
			m.stop()
		}
	}()
	for i := range ms {
		if ms[i], err = startIdleMember(bin, tmp, i+1, f); err != nil {
			return r, err
		}
	}
	say("members: pids %d %d %d", ms[0].cmd.Process.Pid, ms[1].cmd.Process.Pid, ms[2].cmd.Process.Pid)
	if err := settleIdle(ctx, ms, f); err != nil {
		return r, err
	}
	if err := measureMem(ctx, ms, &r); err != nil {
		return r, err
	}
	return r, measureCPU(ctx, ms, f, &r)
}

// settleIdle connects the members, then creates the groups in waves of
// f.wave: each wave is created on every member, its elections started,
// and waited for until settled (every group has a leader and, with
// quiescence, is quiesced), so that only one wave ticks at a time. Then it
// waits until all groups are settled. Without quiescence, groups that have
// no leader by the deadline are reported, and the run goes on: their
// ticking is what it measures.
func settleIdle(ctx context.Context, ms []*idleProc, f idleFlags) error {
	var peers []string
	for i, m := range ms {
		peers = append(peers, fmt.Sprintf("%d=%s", i+1, m.addr))
	}
	if _, err := askAll(ctx, ms, "peers "+strings.Join(peers, " ")); err != nil {
		return err
	}
	start := time.Now()
	deadline := start.Add(f.timeout)
	for lo := 1; lo <= f.groups; lo += f.wave {
		hi := min(lo+f.wave-1, f.groups)
		span := fmt.Sprintf(" %d %d", lo, hi)
		if _, err := askAll(ctx, ms, "create"+span); err != nil {
			return err
		}
		if _, err := askAll(ctx, ms, "campaign"+span); err != nil {
			return err
		}
		if err := waitSettled(ctx, ms, lo, hi, deadline); err != nil {
			if !f.noQuiesce || ctx.Err() != nil {
				return err
			}
			say("going on without quiescence: %v", err)
		}
	}
	say("created %d groups on each member, in waves of %d, in %v", f.groups, f.wave,
		time.Since(start).Round(time.Millisecond))
	err := waitSettled(ctx, ms, 1, f.groups, deadline)
	if err != nil && f.noQuiesce && ctx.Err() == nil {
		say("going on without quiescence: %v", err)
		return nil
	}
	if err == nil {
		say("every group has a leader%s, %v after creation began",
			map[bool]string{true: " (quiescence off)", false: " and is quiesced"}[f.noQuiesce],
			time.Since(start).Round(time.Millisecond))
	}
	return err
}

// waitSettled polls the members until groups lo..hi are settled on all.
func waitSettled(ctx context.Context, ms []*idleProc, lo, hi int, deadline time.Time) error {
	q := fmt.Sprintf("settled %d %d", lo, hi)
	for last := time.Now(); ; {
		st, err := askAll(ctx, ms, q)
		if err != nil {
			return err
		}
		if strings.Join(st, ",") == "yes,yes,yes" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("groups %d..%d not settled by the deadline: %s", lo, hi, strings.Join(st, "; "))
		}
		if time.Since(last) > 5*time.Second {
			say("waiting for groups %d..%d: %s", lo, hi, strings.Join(st, "; "))
			last = time.Now()
		}
		if !sleepCtx(ctx, 100*time.Millisecond) {
			return ctx.Err()
		}
	}
}

// measureMem averages the members' heap and RSS growth per group.
func measureMem(ctx context.Context, ms []*idleProc, r *idleResult) error {
	ans, err := askAll(ctx, ms, "mem")
	if err != nil {
		return err
	}
	var heap, rss int64
	for i, a := range ans {
		v, err := parseInts(a, 4)
		if err != nil {
			return fmt.Errorf("member %d: mem: %w", i+1, err)
		}
		heap += v[1] - v[0]
		rss += v[3] - v[2]
	}
	n := int64(len(ms) * r.groups)
	r.memPerGroup, r.rssPerGroup = heap/n, rss/n
	return nil
}

// measureCPU measures each member's CPU time over f.duration.
func measureCPU(ctx context.Context, ms []*idleProc, f idleFlags, r *idleResult) error {
	sayStats(ctx, ms, "before")
	say("measuring the idle members for %v", f.duration)
	before, err := askAll(ctx, ms, "cpu")
	if err != nil {
		return err
	}
	start := time.Now()
	if !sleepCtx(ctx, f.duration) {
		return ctx.Err()
	}
	after, err := askAll(ctx, ms, "cpu")
	if err != nil {
		return err
	}
	wall := time.Since(start)
	var sum float64
	var per []string
	for i := range ms {
		b, err1 := parseInts(before[i], 1)
		a, err2 := parseInts(after[i], 1)
		if err := errors.Join(err1, err2); err != nil {
			return fmt.Errorf("member %d: cpu: %w", i+1, err)
		}
		p := 100 * float64(a[0]-b[0]) / float64(wall.Nanoseconds())
		sum += p
		per = append(per, fmt.Sprintf("%.2f%%", p))
	}
	r.cpuPercent = sum / float64(len(ms))
	say("CPU per member (of one core): %s", strings.Join(per, " "))
	sayStats(ctx, ms, "after")
	return nil
}

// sayStats prints the members' host and WAL counters.
func sayStats(ctx context.Context, ms []*idleProc, when string) {
	if stats, err := askAll(ctx, ms, "stats"); err == nil {
		for i, s := range stats {
			say("member %d %s: %s", i+1, when, s)
		}
	}
}

func parseInts(s string, n int) ([]int64, error) {
	f := strings.Fields(s)
	if len(f) != n {
		return nil, fmt.Errorf("answer %q: want %d numbers", s, n)
	}
	out := make([]int64, n)
	for i, x := range f {
		v, err := strconv.ParseInt(x, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("answer %q: %w", s, err)
		}
		out[i] = v
	}
	return out, nil
}

// sleepCtx waits d, or less if ctx ends first; it reports whether it
// waited all of d.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// idleProc is a member process and its command pipe.
type idleProc struct {
	id    int
	cmd   *exec.Cmd
	in    io.WriteCloser
	lines chan string // its stdout, line by line; closed at its end
	done  chan struct{}
	addr  string
}

func startIdleMember(bin, tmp string, id int, f idleFlags) (*idleProc, error) {
	args := []string{"idle-member", "--id", strconv.Itoa(id),
		"--dir", filepath.Join(tmp, fmt.Sprintf("member%d", id)), "--groups", strconv.Itoa(f.groups),
		"--tick", f.tick.String(), "--workers", strconv.Itoa(f.workers)}
	if f.noQuiesce {
		args = append(args, "--no-quiesce")
	}
	cmd := exec.Command(bin, args...)
	cmd.Stderr = os.Stderr
	// Own process group, so a Ctrl-C reaches only the parent, which
	// stops the members; Pdeathsig, so they never outlive it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &idleProc{id: id, cmd: cmd, in: in, lines: make(chan string, 4), done: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		close(p.lines)
		_ = cmd.Wait()
		close(p.done)
	}()
	addr, err := p.read(context.Background(), "addr", 30*time.Second)
	if err != nil {
		p.stop()
		return nil, err
	}
	p.addr = addr
	return p, nil
}

// read returns the rest of the member's next line, which must start with
// word.
func (p *idleProc) read(ctx context.Context, word string, timeout time.Duration) (string, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case line, ok := <-p.lines:
		if !ok {
			return "", fmt.Errorf("member %d exited", p.id)
		}
		rest, found := strings.CutPrefix(line, word+" ")
		if !found {
			return "", fmt.Errorf("member %d: %s: %s", p.id, word, line)
		}
		return rest, nil
	case <-ctx.Done():
		return "", ctx.Err()
	case <-t.C:
		return "", fmt.Errorf("member %d: no answer to %s in %v", p.id, word, timeout)
	}
}

// askAll sends cmd to every member, then collects their answers.
func askAll(ctx context.Context, ms []*idleProc, cmd string) ([]string, error) {
	for _, m := range ms {
		if _, err := fmt.Fprintln(m.in, cmd); err != nil {
			return nil, fmt.Errorf("member %d: %w", m.id, err)
		}
	}
	word, _, _ := strings.Cut(cmd, " ")
	out := make([]string, len(ms))
	for i, m := range ms {
		var err error
		if out[i], err = m.read(ctx, word, 10*time.Minute); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// stop closes the member's stdin, which makes it close its host and WAL
// and exit, and kills it if it takes more than a few seconds.
func (p *idleProc) stop() {
	if p == nil {
		return
	}
	_ = p.in.Close()
	go func() { // drain, so that it never blocks writing an answer
		for range p.lines {
		}
	}()
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}
