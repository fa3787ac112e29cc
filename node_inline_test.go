package raft

import (
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
	n = nodeOf(rn)
	n.mu.Lock()
	n.prepareReady(&n.st)
	n.followLeader(&n.st)
	n.armedPropc = n.st.propc
	n.mu.Unlock()
	var once sync.Once
	return n, s, func() { once.Do(func() { go n.loop() }) }
}

// staleProbe is a message every node answers at once (a refusal), and
// which changes nothing: a pre-vote request of a past term.
func staleProbe(from uint64) pb.Message {
	return pb.Message{Type: pb.MsgPreVote, From: from, To: 1, Term: 1}
}

// A message from a peer to an idle node is stepped by the caller itself:
// with no node goroutine at all, Step takes it (even with its ctx already
// done, which a message the node goroutine is ready for ignores too), and
// the Ready it makes is left on offer for the goroutine, since nobody
// waits on Ready().
func TestNodeStepOnCallerWhenIdle(t *testing.T) {
	n, _, start := idleLeaderNode(t)
	defer n.Stop()
	defer start() // Stop needs the goroutine
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := n.Step(ctx, staleProbe(2)); err != nil {
		t.Fatalf("Step = %v, want it stepped by the caller", err)
	}
	if n.st.readyc == nil || len(n.st.rd.Messages) != 1 || n.st.rd.Messages[0].Type != pb.MsgPreVoteResp {
		t.Fatalf("Ready on offer %s", DescribeReady(n.st.rd, nil))
	}
	start()
	if rd := <-n.Ready(); len(rd.Messages) != 1 || !rd.Messages[0].Reject {
		t.Fatalf("Ready %s", DescribeReady(rd, nil))
	}
	n.Advance()
}

// Proposals are not stepped by their callers, idle node or not: the wait
// for the node goroutine is what gives batching proposers their batches.
func TestNodeProposeHandedOverWhenIdle(t *testing.T) {
	n, _, start := idleLeaderNode(t)
	defer n.Stop()
	defer start()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := n.Propose(ctx, []byte("x")); !errors.Is(err, context.Canceled) {
		t.Fatalf("Propose = %v, want it handed over (and given up)", err)
	}
	if err := n.Step(ctx, pb.Message{Type: pb.MsgProp, Entries: []pb.Entry{{Data: []byte("y")}}}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Step(MsgProp) = %v, want it handed over (and given up)", err)
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

// With the application waiting on Ready(), the Ready a received message
// makes is handed to it by the caller, and Advance is taken by the caller
// too: whole rounds without the node goroutine.
func TestNodeReadyHandedOverByCaller(t *testing.T) {
	n, _, start := idleLeaderNode(t)
	defer n.Stop()
	defer start()
	want, got := make(chan struct{}), make(chan Ready)
	defer close(want)
	go readyReceiver(n, want, got)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for from := uint64(2); from < 5; from++ {
		want <- struct{}{}
		waitParked(t, "readyReceiver")
		if err := n.Step(ctx, staleProbe(from)); err != nil {
			t.Fatal(err)
		}
		rd := <-got
		if len(rd.Messages) != 1 || rd.Messages[0].Type != pb.MsgPreVoteResp || rd.Messages[0].To != from {
			t.Fatalf("Ready after Step %s", DescribeReady(rd, nil))
		}
		n.Advance()
	}
}

// Once a caller has handed a message to the node goroutine (the state
// machine was busy), later messages go the same way until it has been
// stepped, so that one caller's messages are stepped in the order it sent
// them.
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
	if err := n.Step(ctx, staleProbe(3)); !errors.Is(err, context.Canceled) {
		t.Fatalf("Step = %v; want it handed over behind the heartbeat (and given up)", err)
	}
	start()
	if err := <-stepped; err != nil {
		t.Fatal(err)
	}
	if st := n.Status(); st.RaftState != StateFollower || st.Lead != 2 || st.Term != 5 {
		t.Fatalf("status %+v", st.BasicStatus)
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
