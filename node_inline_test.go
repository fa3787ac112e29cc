package raft

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	pb "github.com/raftkit/raft/raftpb"
)

// idleLeaderNode returns the node of a single voter that leads, as its node
// goroutine leaves it before waiting in its select, but without that
// goroutine: whatever the tests see done was done on the callers'
// goroutines. start runs the goroutine (once), for the tests that need it
// later; Stop is then deferred by the caller.
func idleLeaderNode(t *testing.T) (n *node, s *MemoryStorage, start func()) {
	t.Helper()
	rn, s := rnElectSingle(t, nil)
	n = newNode(rn)
	n.mu.Lock()
	n.prepareReady(&n.st)
	n.followLeader(&n.st)
	n.armedPropc = n.st.propc
	n.mu.Unlock()
	var once sync.Once
	return n, s, func() { once.Do(func() { go n.run() }) }
}

// A proposal to an idle node is stepped by the proposer itself: with no
// node goroutine at all, Propose takes it (even with its ctx already done,
// which a proposal the node goroutine is ready for ignores too).
func TestNodeProposeStepsOnCallerWhenIdle(t *testing.T) {
	n, _, start := idleLeaderNode(t)
	defer n.Stop()
	defer start() // Stop needs the goroutine
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	last := n.rn.raft.log.last()
	if err := n.Propose(ctx, []byte("inline")); err != nil {
		t.Fatalf("Propose = %v, want it stepped by the caller", err)
	}
	if got := n.rn.raft.log.last(); got != last+1 {
		t.Fatalf("last index %d after Propose, want %d", got, last+1)
	}
	// Nobody waits on Ready(), so the Ready is left for the goroutine.
	if n.st.readyc == nil || len(n.st.rd.Entries) != 1 || string(n.st.rd.Entries[0].Data) != "inline" {
		t.Fatalf("Ready on offer %s", DescribeReady(n.st.rd, nil))
	}
	start()
	rd := <-n.Ready()
	if len(rd.Entries) != 1 || string(rd.Entries[0].Data) != "inline" {
		t.Fatalf("Ready %s", DescribeReady(rd, nil))
	}
	n.Advance()
}

// A proposal is stepped by its caller only while raft has nothing in
// flight: once an entry is waiting to be persisted and committed, the
// next proposal is handed to the node goroutine (here there is none, so
// it gives up with its ctx), which keeps the batching of loaded proposers.
func TestNodeProposeHandedOverWhileEntriesInFlight(t *testing.T) {
	n, _, start := idleLeaderNode(t)
	defer n.Stop()
	defer start()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := n.Propose(ctx, []byte("first")); err != nil {
		t.Fatalf("first Propose = %v, want it stepped by the caller", err)
	}
	// Take the Ready and advance it, as the application would: the node
	// goroutine has nothing to do, but the entry, durable and committed
	// now, is not applied yet.
	n.mu.Lock()
	n.readyTaken(&n.st)
	n.advanced(&n.st)
	idle, l := n.idle(), &n.rn.raft.log
	n.mu.Unlock()
	if !idle || l.applied == l.last() {
		t.Fatalf("idle %v, log %s", idle, l)
	}
	if err := n.Propose(ctx, []byte("second")); !errors.Is(err, context.Canceled) {
		t.Fatalf("second Propose = %v, want it handed over (and given up)", err)
	}
}

// waitParked waits until some goroutine whose stack mentions fn is blocked
// receiving from a channel (a plain receive or a select).
func waitParked(t *testing.T, fn string) {
	t.Helper()
	buf := make([]byte, 1<<20)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		stacks := string(buf[:runtime.Stack(buf, true)])
		for _, g := range strings.Split(stacks, "\n\n") {
			if strings.Contains(g, fn) && (strings.Contains(g, "[chan receive") || strings.Contains(g, "[select")) {
				return
			}
		}
		runtime.Gosched()
	}
	t.Fatalf("no goroutine in %s parked on a channel", fn)
}

// readyReceiver receives Readys for the tests below, one per request.
func readyReceiver(n Node, want <-chan struct{}, got chan<- Ready) {
	for range want {
		got <- <-n.Ready()
	}
}

// With the application waiting on Ready(), the Ready a proposal or a
// received message makes is handed to it by the caller, and Advance is
// taken by the caller too: a whole round without the node goroutine.
func TestNodeReadyHandedOverByCaller(t *testing.T) {
	n, s, start := idleLeaderNode(t)
	defer n.Stop()
	defer start()
	want, got := make(chan struct{}), make(chan Ready)
	defer close(want)
	go readyReceiver(n, want, got)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := 0; i < 3; i++ {
		want <- struct{}{}
		waitParked(t, "readyReceiver")
		data := []byte(fmt.Sprintf("p%d", i))
		if err := n.Propose(ctx, data); err != nil {
			t.Fatalf("Propose = %v", err)
		}
		rd := <-got
		// A single voter commits at once what it persists: the entry, then
		// (after Advance) the commit.
		if len(rd.Entries) != 1 || !bytes.Equal(rd.Entries[0].Data, data) {
			t.Fatalf("Ready %s", DescribeReady(rd, nil))
		}
		rnPersist(t, s, rd)
		want <- struct{}{}
		waitParked(t, "readyReceiver")
		n.Advance()
		rd = <-got
		if len(rd.CommittedEntries) != 1 || !bytes.Equal(rd.CommittedEntries[0].Data, data) {
			t.Fatalf("Ready after Advance %s", DescribeReady(rd, nil))
		}
		n.Advance()
	}
	// A received message, too: a stale pre-vote request is refused at once.
	want <- struct{}{}
	waitParked(t, "readyReceiver")
	if err := n.Step(ctx, pb.Message{Type: pb.MsgPreVote, From: 2, To: 1, Term: 1}); err != nil {
		t.Fatal(err)
	}
	if rd := <-got; len(rd.Messages) != 1 || rd.Messages[0].Type != pb.MsgPreVoteResp || !rd.Messages[0].Reject {
		t.Fatalf("Ready after Step %s", DescribeReady(rd, nil))
	}
	n.Advance()
}

// Once a caller has handed a message to the node goroutine (the goroutine
// was busy), later messages go the same way until it has been stepped, so
// that one caller's messages are stepped in the order it sent them.
func TestNodeInlineWaitsForHandedOverMessages(t *testing.T) {
	n, _, start := idleLeaderNode(t)
	defer n.Stop()
	defer start()
	n.mu.Lock() // the state machine is busy
	stepped := make(chan error, 1)
	go func() {
		stepped <- n.Step(context.Background(), pb.Message{Type: pb.MsgHeartbeat, From: 2, To: 1, Term: 5})
	}()
	for n.queued.Load() == 0 {
		runtime.Gosched()
	}
	n.mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := n.Propose(ctx, []byte("late")); !errors.Is(err, context.Canceled) {
		t.Fatalf("Propose = %v; want it handed over behind the heartbeat (and given up)", err)
	}
	start()
	if err := <-stepped; err != nil {
		t.Fatal(err)
	}
	// The heartbeat of term 5 made the node a follower of 2; the proposal,
	// had it been stepped first, would have been appended to the old log.
	st := n.Status()
	n.mu.Lock()
	last := n.rn.raft.log.last()
	n.mu.Unlock()
	if st.RaftState != StateFollower || st.Lead != 2 || last != 2 {
		t.Fatalf("last index %d, status %+v", last, st.BasicStatus)
	}
}

// nodeCluster is three Nodes wired together in memory: each has a Ready
// loop that persists, sends and applies, and one goroutine stepping what
// it receives, as a transport's reader would. Messages are never lost.
type nodeCluster struct {
	nodes   []Node
	inboxes []chan pb.Message
	applied []chan string
	stop    chan struct{}
	wg      sync.WaitGroup
}

func startNodeCluster(t *testing.T) *nodeCluster {
	c := &nodeCluster{stop: make(chan struct{})}
	var stores []*MemoryStorage
	for id := uint64(1); id <= 3; id++ {
		s := rnStorage(t, 1, 1, 2, 3)
		stores = append(stores, s)
		c.nodes = append(c.nodes, RestartNode(rnConfig(id, s)))
		c.inboxes = append(c.inboxes, make(chan pb.Message, 1<<14))
		c.applied = append(c.applied, make(chan string, 1<<14))
	}
	for i, n := range c.nodes {
		c.wg.Add(2)
		go c.readyLoop(n, stores[i], c.applied[i])
		go func() {
			defer c.wg.Done()
			for m := range c.inboxes[i] {
				_ = n.Step(context.Background(), m)
			}
		}()
	}
	return c
}

func (c *nodeCluster) readyLoop(n Node, s *MemoryStorage, applied chan<- string) {
	defer c.wg.Done()
	for {
		select {
		case rd := <-n.Ready():
			if !IsEmptyHardState(rd.HardState) {
				_ = s.SetHardState(rd.HardState)
			}
			_ = s.Append(rd.Entries)
			for _, m := range rd.Messages {
				c.inboxes[m.To-1] <- m
			}
			for _, e := range rd.CommittedEntries {
				if e.Type == pb.EntryNormal && len(e.Data) != 0 {
					applied <- string(e.Data)
				}
			}
			n.Advance()
		case <-c.stop:
			return
		}
	}
}

func (c *nodeCluster) close() {
	close(c.stop)
	for _, n := range c.nodes {
		n.Stop()
	}
	for _, in := range c.inboxes {
		close(in)
	}
	c.wg.Wait()
}

// Three Nodes, proposals from several goroutines, messages stepped by
// their receivers' goroutines: every proposal is applied once on every
// node, in one order, each proposer's in its own order. Callers step on
// their own goroutines or hand over, Readys leave from callers or from the
// node goroutines, in whatever mix the scheduler makes; run with -race.
func TestNodeClusterInlineAndHandedOver(t *testing.T) {
	c := startNodeCluster(t)
	defer c.close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := c.nodes[0].Campaign(ctx); err != nil {
		t.Fatal(err)
	}
	const proposers, each = 4, 150
	var wg sync.WaitGroup
	for p := 0; p < proposers; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				// Blocks until node 1 knows it leads; nothing else
				// campaigns, so nothing is dropped.
				if err := c.nodes[0].Propose(ctx, []byte(fmt.Sprintf("%d/%d", p, i))); err != nil {
					t.Errorf("Propose: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	var order []string
	for i, applied := range c.applied {
		next := make([]int, proposers)
		for k := 0; k < proposers*each; k++ {
			var d string
			select {
			case d = <-applied:
			case <-ctx.Done():
				t.Fatalf("node %d applied %d of %d", i+1, k, proposers*each)
			}
			var p, j int
			if _, err := fmt.Sscanf(d, "%d/%d", &p, &j); err != nil || j != next[p] {
				t.Fatalf("node %d applied %q, want %d/%d", i+1, d, p, next[p])
			}
			next[p]++
			if i == 0 {
				order = append(order, d)
			} else if order[k] != d {
				t.Fatalf("node %d applied %q at %d, node 1 %q", i+1, d, k, order[k])
			}
		}
	}
}
