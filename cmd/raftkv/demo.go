package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"
)

// runDemo narrates a leader failure: it writes keys, SIGKILLs the leader,
// shows the survivors electing a new one and serving, then restarts the old
// leader and shows it caught up with every key.
func runDemo(args []string) error {
	fs := flag.NewFlagSet("demo", flag.ExitOnError)
	var f clusterFlags
	f.register(fs, filepath.Join(os.TempDir(), "raftkv-demo"))
	keys := fs.Int("keys", 20, "keys to write before and after the crash")
	keep := fs.Bool("keep", false, "leave the cluster running at the end (Ctrl-C stops it)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	stopWithParentUnderGoRun()
	c, lead, err := startCluster(ctx, f)
	if err != nil {
		return err
	}
	defer c.stopAll()
	if err := demoSteps(ctx, c, lead, *keys); err != nil {
		return err
	}
	if *keep {
		say("the cluster keeps running; Ctrl-C stops it")
		<-ctx.Done()
	}
	say("stopping the members; run the same command again to resume from %s", c.dir)
	return nil
}

func demoSteps(ctx context.Context, c *procCluster, lead uint64, n int) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	run := time.Now().Format("150405")
	want := map[string]string{}
	write := func(via uint64, phase string) error {
		addr := c.member(via).HTTPAddr
		for i := 0; i < n; i++ {
			k, v := fmt.Sprintf("demo/%s/%s-%02d", run, phase, i), fmt.Sprintf("value %d written %s", i, phase)
			if err := retryWrite(ctx, func(ctx context.Context) error { return c.client.Put(ctx, addr, k, v) }); err != nil {
				return fmt.Errorf("writing %s through member %d: %w", k, via, err)
			}
			want[k] = v
		}
		say("wrote %d keys through member %d (demo/%s/%s-00 .. -%02d)", n, via, run, phase, n-1)
		return nil
	}

	say("step 1: write keys")
	if err := write(lead, "before-crash"); err != nil {
		return err
	}
	say("step 2: SIGKILL the leader, member %d", lead)
	c.kill(lead)
	var rest []uint64
	for _, id := range c.ids() {
		if id != lead {
			rest = append(rest, id)
		}
	}
	t0 := time.Now()
	newLead, err := c.waitLeader(ctx, rest...)
	if err != nil {
		return err
	}
	say("step 3: members %v elected member %d in %v; it serves writes and reads", rest, newLead, time.Since(t0).Round(time.Millisecond))
	if err := write(newLead, "after-crash"); err != nil {
		return err
	}
	for _, id := range rest {
		k := fmt.Sprintf("demo/%s/before-crash-00", run)
		v, ok, err := c.client.Get(ctx, c.member(id).HTTPAddr, k, false)
		if err != nil || !ok || v != want[k] {
			return fmt.Errorf("linearizable read of %s on member %d: %q %v %v", k, id, v, ok, err)
		}
		say("member %d reads %s = %q (linearizable)", id, k, v)
	}

	say("step 4: restart the old leader, member %d", lead)
	if err := c.start(lead); err != nil {
		return err
	}
	st, err := c.client.Status(ctx, c.member(newLead).HTTPAddr)
	if err != nil {
		return err
	}
	caught, err := c.waitCaughtUp(ctx, lead, st)
	if err != nil {
		return err
	}
	say("member %d is back as %s (term %d, leader %d) and applied %d (leader committed %d)",
		lead, caught.State, caught.Term, caught.Leader, caught.Applied, st.Commit)
	for k, v := range want {
		got, ok, err := c.client.Get(ctx, c.member(lead).HTTPAddr, k, true)
		if err != nil || !ok || got != v {
			return fmt.Errorf("member %d: %s = %q (found %v, %v), want %q", lead, k, got, ok, err, v)
		}
	}
	say("member %d has all %d keys (local reads): nothing acknowledged was lost", lead, len(want))
	c.printProgress(ctx)
	return nil
}

// retryWrite retries a write while the cluster says it certainly did not
// apply it (no leader yet); any other error is returned.
func retryWrite(ctx context.Context, f func(context.Context) error) error {
	for {
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := f(rctx)
		cancel()
		if err == nil || !isNoLeader(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(100 * time.Millisecond):
		}
	}
}
