package raft

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	pb "github.com/raftkit/raft/raftpb"
	"github.com/raftkit/raft/tracker"
)

// nodeLoop runs the application side of a Node on its own goroutine and
// reports what happens over channels, so that tests can wait for events
// instead of sleeping.
type nodeLoop struct {
	n       Node
	s       *MemoryStorage
	applied chan string    // data of applied non-empty normal entries
	reads   chan ReadState // read states handed out
	sent    chan pb.Message
	leader  chan struct{} // closed once a Ready reports this node leading
	stop    chan struct{}
	done    chan struct{}
}

const nodeLoopBuffer = 1 << 12

func startNodeLoop(n Node, s *MemoryStorage) *nodeLoop {
	l := &nodeLoop{
		n: n, s: s,
		applied: make(chan string, nodeLoopBuffer),
		reads:   make(chan ReadState, nodeLoopBuffer),
		sent:    make(chan pb.Message, nodeLoopBuffer),
		leader:  make(chan struct{}),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	go l.spin()
	return l
}

func (l *nodeLoop) spin() {
	defer close(l.done)
	led := false
	for {
		select {
		case rd := <-l.n.Ready():
			l.handle(rd)
			if !led && rd.SoftState != nil && rd.RaftState == StateLeader {
				led = true
				close(l.leader)
			}
		case <-l.stop:
			return
		}
	}
}

func (l *nodeLoop) handle(rd Ready) {
	if !IsEmptyHardState(rd.HardState) {
		_ = l.s.SetHardState(rd.HardState)
	}
	_ = l.s.Append(rd.Entries)
	for _, m := range rd.Messages {
		l.sent <- m
	}
	for _, rs := range rd.ReadStates {
		l.reads <- rs
	}
	for _, e := range rd.CommittedEntries {
		switch e.Type {
		case pb.EntryNormal:
			if len(e.Data) != 0 {
				l.applied <- string(e.Data)
			}
		case pb.EntryConfChange:
			var cc pb.ConfChange
			if err := cc.Unmarshal(e.Data); err == nil {
				l.n.ApplyConfChange(cc)
			}
		case pb.EntryConfChangeV2:
			var cc pb.ConfChangeV2
			if err := cc.Unmarshal(e.Data); err == nil {
				l.n.ApplyConfChange(cc)
			}
		}
	}
	l.n.Advance()
}

// halt stops the loop (the Node keeps running) and waits for it to exit.
func (l *nodeLoop) halt() {
	close(l.stop)
	<-l.done
}

// startSingleVoter starts a Node that is the only voter and waits until it
// leads.
func startSingleVoter(t testing.TB, mutate func(*Config)) (Node, *nodeLoop) {
	t.Helper()
	s := rnStorage(t, 1, 1)
	c := rnConfig(1, s)
	if mutate != nil {
		mutate(c)
	}
	n := RestartNode(c)
	l := startNodeLoop(n, s)
	if err := n.Campaign(context.Background()); err != nil {
		t.Fatal(err)
	}
	<-l.leader
	return n, l
}

func TestNodeProposeAndApply(t *testing.T) {
	n, l := startSingleVoter(t, nil)
	defer n.Stop()
	defer l.halt()
	ctx := context.Background()
	for _, d := range []string{"a", "b", "c"} {
		if err := n.Propose(ctx, []byte(d)); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range []string{"a", "b", "c"} {
		if got := <-l.applied; got != want {
			t.Fatalf("applied %q, want %q", got, want)
		}
	}
	st := n.Status()
	if st.RaftState != StateLeader || st.Lead != 1 || st.Term != 1 {
		t.Fatalf("status: %+v", st.BasicStatus)
	}
}

// Propose reports the state machine's refusal: here the uncommitted log is
// over its size limit, because nobody handles Readys any more.
func TestNodeProposeReturnsDrop(t *testing.T) {
	n, l := startSingleVoter(t, func(c *Config) { c.MaxUncommittedEntriesSize = 8 })
	defer n.Stop()
	l.halt()
	ctx := context.Background()
	// The first proposal always fits, whatever its size.
	if err := n.Propose(ctx, []byte("0123456789")); err != nil {
		t.Fatal(err)
	}
	if err := n.Propose(ctx, []byte("x")); !errors.Is(err, ErrProposalDropped) {
		t.Fatalf("Propose over the limit = %v, want ErrProposalDropped", err)
	}
	// ProposeConfChange does not wait for the verdict.
	if err := n.ProposeConfChange(ctx, pb.ConfChange{Type: pb.ConfChangeAddNode, NodeID: 2, Context: []byte("0123456789")}); err != nil {
		t.Fatalf("ProposeConfChange = %v", err)
	}
}

// Proposals from many callers at once are stepped one by one, each caller
// getting its own verdict, however many one wake-up of the node goroutine
// takes: with the uncommitted log limited to 10 bytes and nobody handling
// Readys, exactly ten one-byte proposals fit (as they would one at a time),
// not all or none of a batch.
func TestNodeConcurrentProposalsGetTheirOwnVerdict(t *testing.T) {
	n, l := startSingleVoter(t, func(c *Config) { c.MaxUncommittedEntriesSize = 10 })
	defer n.Stop()
	l.halt()
	const callers = 40
	errs := make(chan error, callers)
	var start sync.WaitGroup
	start.Add(1)
	for i := 0; i < callers; i++ {
		go func() {
			start.Wait()
			errs <- n.Propose(context.Background(), []byte{'x'})
		}()
	}
	start.Done()
	taken, dropped := 0, 0
	for i := 0; i < callers; i++ {
		switch err := <-errs; {
		case err == nil:
			taken++
		case errors.Is(err, ErrProposalDropped):
			dropped++
		default:
			t.Fatalf("Propose = %v", err)
		}
	}
	if taken != 10 || dropped != callers-10 {
		t.Fatalf("%d proposals taken and %d dropped, want 10 and %d", taken, dropped, callers-10)
	}
}

// Proposers racing each other and the Ready loop (proposals stepped by the
// callers themselves while the node goroutine waits, or handed over while a
// Ready is on offer) lose nothing and duplicate nothing: every proposal is
// persisted contiguously and applied exactly once.
func TestNodeConcurrentProposalsAllApplied(t *testing.T) {
	n, l := startSingleVoter(t, nil)
	defer n.Stop()
	defer l.halt()
	const proposers, each = 8, 200
	var wg sync.WaitGroup
	for p := 0; p < proposers; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				if err := n.Propose(context.Background(), []byte(fmt.Sprintf("%d/%d", p, i))); err != nil {
					t.Errorf("Propose: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	seen := map[string]bool{}
	next := make([]int, proposers)
	for len(seen) < proposers*each {
		d := <-l.applied
		if seen[d] {
			t.Fatalf("%q applied twice", d)
		}
		seen[d] = true
		var p, i int
		if _, err := fmt.Sscanf(d, "%d/%d", &p, &i); err != nil || i != next[p] {
			t.Fatalf("applied %q out of its proposer's order (want %d/%d)", d, p, next[p])
		}
		next[p]++
	}
	last, err := l.s.LastIndex()
	if err != nil {
		t.Fatal(err)
	}
	// The snapshot at 1, the leader's empty entry, then the proposals.
	if want := uint64(2 + proposers*each); last != want {
		t.Fatalf("storage ends at %d, want %d", last, want)
	}
}

// stallingLogger blocks the goroutine that logs a debug line while stall
// is set, until release is closed: a stand-in for a node goroutine stuck in
// slow application code (storage, logging).
type stallingLogger struct {
	Logger
	stall   atomic.Bool
	stalled chan struct{}
	release chan struct{}
}

func (l *stallingLogger) Debugf(format string, v ...interface{}) {
	if l.stall.CompareAndSwap(true, false) {
		close(l.stalled)
		<-l.release
	}
}

// While the state machine is busy, Propose still gives up when its ctx
// ends: a proposer does not wait for it to become free in order to step its
// proposal itself. The state machine may be busy on the node goroutine or
// on the goroutine of a caller stepping its own message (node_inline.go):
// here it is the latter, a Campaign that stalls.
func TestNodeProposeHonoursContextWhileNodeIsBusy(t *testing.T) {
	lg := &stallingLogger{Logger: rnQuietLogger(), stalled: make(chan struct{}), release: make(chan struct{})}
	n, l := startSingleVoter(t, func(c *Config) { c.Logger = lg })
	defer n.Stop()
	defer l.halt()
	var release sync.Once
	defer release.Do(func() { close(lg.release) })
	lg.stall.Store(true)
	// A leader logs a debug line when asked to campaign, and stalls there.
	campaigned := make(chan error, 1)
	go func() { campaigned <- n.Campaign(context.Background()) }()
	<-lg.stalled
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Propose(ctx, []byte("x")) }()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Propose = %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Propose waited for the busy state machine despite its ctx")
	}
	release.Do(func() { close(lg.release) })
	if err := <-campaigned; err != nil {
		t.Fatal(err)
	}
}

func TestNodeProposeWithoutLeaderHonoursContext(t *testing.T) {
	s := rnStorage(t, 1, 1, 2, 3)
	n := RestartNode(rnConfig(1, s))
	defer n.Stop()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	// Without a leader nobody takes proposals, so only ctx can end the wait.
	if err := n.Propose(ctx, []byte("x")); !errors.Is(err, context.Canceled) {
		t.Fatalf("Propose = %v, want context.Canceled", err)
	}
	if err := n.ProposeConfChange(ctx, pb.ConfChangeV2{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("ProposeConfChange = %v, want context.Canceled", err)
	}
}

func TestNodeStop(t *testing.T) {
	n, l := startSingleVoter(t, nil)
	l.halt()
	n.Stop()
	n.Stop() // again: returns at once

	ctx := context.Background()
	for name, err := range map[string]error{
		"Propose":           n.Propose(ctx, []byte("x")),
		"Campaign":          n.Campaign(ctx),
		"Step":              n.Step(ctx, pb.Message{Type: pb.MsgHeartbeat, From: 2, To: 1}),
		"ReadIndex":         n.ReadIndex(ctx, nil),
		"ForgetLeader":      n.ForgetLeader(ctx),
		"ProposeConfChange": n.ProposeConfChange(ctx, pb.ConfChange{}),
	} {
		if err != ErrStopped {
			t.Errorf("%s after Stop = %v, want ErrStopped", name, err)
		}
	}
	// None of these may block on a stopped node.
	n.Tick()
	n.Advance()
	n.ReportUnreachable(2)
	n.ReportSnapshot(2, SnapshotFailure)
	n.TransferLeadership(ctx, 1, 2)
	if cs := n.ApplyConfChange(pb.ConfChange{Type: pb.ConfChangeAddNode, NodeID: 2}); cs == nil || len(cs.Voters) != 0 {
		t.Errorf("ApplyConfChange after Stop = %+v", cs)
	}
	if st := n.Status(); st.ID != 0 || st.Progress != nil {
		t.Errorf("Status after Stop = %+v", st)
	}
}

func TestNodeReadIndex(t *testing.T) {
	n, l := startSingleVoter(t, nil)
	defer n.Stop()
	defer l.halt()
	if err := n.ReadIndex(context.Background(), []byte("q1")); err != nil {
		t.Fatal(err)
	}
	rs := <-l.reads
	if rs.Index != 2 || string(rs.RequestCtx) != "q1" {
		t.Fatalf("read state %+v", rs)
	}
}

func TestNodeStepIgnoresLocalMessagesFromPeers(t *testing.T) {
	s := rnStorage(t, 1, 1, 2, 3)
	n := RestartNode(rnConfig(1, s))
	defer n.Stop()
	if err := n.Step(context.Background(), pb.Message{Type: pb.MsgHup, From: 2, To: 1}); err != nil {
		t.Fatal(err)
	}
	if st := n.Status(); st.RaftState != StateFollower || st.Term != 0 {
		t.Fatalf("a MsgHup from a peer made the node campaign: %+v", st.BasicStatus)
	}
}

// pairedNodes is a Node (ID 1) with a RawNode peer (ID 2) that the test
// goroutine drives by hand.
type pairedNodes struct {
	t    *testing.T
	n    Node
	loop *nodeLoop
	peer *RawNode
	ps   *MemoryStorage
}

func newPairedNodes(t *testing.T) *pairedNodes {
	s1 := rnStorage(t, 1, 1, 2)
	n := RestartNode(rnConfig(1, s1))
	ps := rnStorage(t, 1, 1, 2)
	return &pairedNodes{t: t, n: n, loop: startNodeLoop(n, s1), peer: rnNew(t, rnConfig(2, ps)), ps: ps}
}

func (p *pairedNodes) close() {
	p.loop.halt()
	p.n.Stop()
}

// pumpUntil delivers the Node's messages to the peer and the peer's answers
// back, until cond holds. The Node must have something to send when cond
// does not hold yet.
func (p *pairedNodes) pumpUntil(cond func() bool) {
	p.t.Helper()
	for !cond() {
		m := <-p.loop.sent
		if err := p.peer.Step(m); err != nil {
			p.t.Fatalf("peer stepping %s: %v", DescribeMessage(m, nil), err)
		}
		for p.peer.HasReady() {
			rd := p.peer.Ready()
			rnPersist(p.t, p.ps, rd)
			for _, out := range rd.Messages {
				if err := p.n.Step(context.Background(), out); err != nil {
					p.t.Fatal(err)
				}
			}
			p.peer.Advance(rd)
		}
	}
}

func TestNodeReportUnreachable(t *testing.T) {
	p := newPairedNodes(t)
	defer p.close()
	if err := p.n.Campaign(context.Background()); err != nil {
		t.Fatal(err)
	}
	peerState := func() tracker.StateType { return p.n.Status().Progress[2].State }
	p.pumpUntil(func() bool {
		st := p.n.Status()
		return st.RaftState == StateLeader && st.Progress[2].State == tracker.StateReplicate
	})
	p.n.ReportUnreachable(2)
	if got := peerState(); got != tracker.StateProbe {
		t.Fatalf("after ReportUnreachable the peer is %v", got)
	}
	// A response from a node outside the configuration is dropped quietly.
	if err := p.n.Step(context.Background(), pb.Message{Type: pb.MsgAppResp, From: 7, To: 1, Term: 1, Index: 2}); err != nil {
		t.Fatal(err)
	}
	if _, ok := p.n.Status().Progress[7]; ok {
		t.Fatal("a stranger's response made it into the progress map")
	}
}

func TestNodeTransferLeadership(t *testing.T) {
	p := newPairedNodes(t)
	defer p.close()
	ctx := context.Background()
	if err := p.n.Campaign(ctx); err != nil {
		t.Fatal(err)
	}
	p.pumpUntil(func() bool {
		st := p.n.Status()
		return st.RaftState == StateLeader && st.Progress[2].Match == 2
	})
	p.n.TransferLeadership(ctx, 1, 2)
	// The peer is up to date, so it is told to campaign at once; it wins
	// and node 1 follows it.
	p.pumpUntil(func() bool { return p.peer.BasicStatus().RaftState == StateLeader })
	for p.peer.HasReady() {
		rd := p.peer.Ready()
		rnPersist(t, p.ps, rd)
		for _, out := range rd.Messages {
			if err := p.n.Step(ctx, out); err != nil {
				t.Fatal(err)
			}
		}
		p.peer.Advance(rd)
	}
	if st := p.n.Status(); st.Lead != 2 || st.Term != 2 || st.RaftState != StateFollower {
		t.Fatalf("after the transfer: %+v", st.BasicStatus)
	}
}

// A proposal made after Step returned is stepped after the stepped message,
// however the proposal reaches the state machine (handed to the node
// goroutine, or stepped by the caller while the goroutine waits): here the
// message makes the leader follow a newer leader, so the proposal must be
// forwarded to it rather than appended to a log about to be overwritten.
func TestNodeProposeAfterStepSeesTheStep(t *testing.T) {
	p := newPairedNodes(t)
	defer p.close()
	ctx := context.Background()
	if err := p.n.Campaign(ctx); err != nil {
		t.Fatal(err)
	}
	p.pumpUntil(func() bool {
		st := p.n.Status()
		return st.RaftState == StateLeader && st.Progress[2].Match == 2
	})
	for i := 0; i < 2; i++ { // drain what the last round sent
		select {
		case <-p.loop.sent:
		default:
		}
	}
	if err := p.n.Step(ctx, pb.Message{Type: pb.MsgHeartbeat, From: 2, To: 1, Term: 2, Commit: 2}); err != nil {
		t.Fatal(err)
	}
	if err := p.n.Propose(ctx, []byte("late")); err != nil {
		t.Fatal(err)
	}
	timeout := time.After(10 * time.Second)
	for {
		select {
		case m := <-p.loop.sent:
			if m.Type == pb.MsgProp {
				if m.To != 2 || len(m.Entries) != 1 || string(m.Entries[0].Data) != "late" {
					t.Fatalf("forwarded %s", DescribeMessage(m, nil))
				}
				return
			}
		case <-timeout:
			t.Fatalf("the proposal was not forwarded to the new leader; status %+v", p.n.Status().BasicStatus)
		}
	}
}

// BenchmarkNodePropose measures proposals through a single-voter Node whose
// Ready loop runs on another goroutine: each Propose waits for the state
// machine's verdict, not for the commit.
func BenchmarkNodePropose(b *testing.B) {
	n, l := startSingleVoter(b, nil)
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		for range l.applied { // keep the loop from blocking
		}
	}()
	defer func() {
		l.halt()
		close(l.applied)
		<-drained
		n.Stop()
	}()
	ctx := context.Background()
	data := make([]byte, 64)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := n.Propose(ctx, data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkNodeStep measures Node.Step of a message from a peer, the path
// every message a transport receives takes: the hand-over into the node
// goroutine and raft's step of it. The node leads three voters and steps a
// follower's acknowledgement of what it already has (MsgAppResp), so that
// the step itself is cheap and the hand-over dominates; its Ready loop
// runs on another goroutine, as in an application.
func BenchmarkNodeStep(b *testing.B) {
	s := rnStorage(b, 1, 1, 2, 3)
	n := RestartNode(rnConfig(1, s))
	l := startNodeLoop(n, s)
	drained := make(chan struct{})
	vote := make(chan pb.Message, 1)
	go func() {
		defer close(drained)
		for m := range l.sent { // keep the loop from blocking
			if m.Type == pb.MsgVote && m.To == 2 {
				vote <- m
			}
		}
	}()
	defer func() {
		l.halt()
		close(l.sent)
		<-drained
		n.Stop()
	}()
	ctx := context.Background()
	if err := n.Campaign(ctx); err != nil {
		b.Fatal(err)
	}
	req := <-vote
	if err := n.Step(ctx, pb.Message{Type: pb.MsgVoteResp, From: 2, To: 1, Term: req.Term}); err != nil {
		b.Fatal(err)
	}
	<-l.leader
	last, err := s.LastIndex()
	if err != nil {
		b.Fatal(err)
	}
	ack := pb.Message{Type: pb.MsgAppResp, From: 2, To: 1, Term: req.Term, Index: last}
	// The first acknowledgements move the followers' progress; from then
	// on every step is a duplicate. Status is served by the node goroutine
	// between steps, so this waits for those first two to be stepped.
	for _, from := range []uint64{2, 3} {
		ack.From = from
		if err := n.Step(ctx, ack); err != nil {
			b.Fatal(err)
		}
	}
	for st := n.Status(); st.Progress[2].Match < last || st.Progress[3].Match < last; st = n.Status() {
		runtime.Gosched()
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ack.From = 2 + uint64(i&1)
		if err := n.Step(ctx, ack); err != nil {
			b.Fatal(err)
		}
	}
}

// With AsyncStorageWrites the application never calls Advance: it does the
// storage work carried by local messages and steps their responses back.
func TestNodeAsyncStorageWrites(t *testing.T) {
	s := rnStorage(t, 1, 1)
	c := rnConfig(1, s)
	c.AsyncStorageWrites = true
	n := RestartNode(c)
	defer n.Stop()
	ctx := context.Background()
	applied := make(chan string, 16)
	stop := make(chan struct{})
	loopDone := make(chan struct{})
	go func() {
		defer close(loopDone)
		for {
			var rd Ready
			select {
			case rd = <-n.Ready():
			case <-stop:
				return
			}
			for _, m := range rd.Messages {
				switch m.To {
				case LocalAppendThread:
					if hs := (pb.HardState{Term: m.Term, Vote: m.Vote, Commit: m.Commit}); !IsEmptyHardState(hs) {
						_ = s.SetHardState(hs)
					}
					_ = s.Append(m.Entries)
				case LocalApplyThread:
				default:
					continue
				}
				for _, resp := range m.Responses {
					if err := n.Step(ctx, resp); err != nil {
						t.Error(err)
					}
				}
				// Report applied commands only once the node knows of them.
				for _, e := range m.Entries {
					if m.To == LocalApplyThread && e.Type == pb.EntryNormal && len(e.Data) != 0 {
						applied <- string(e.Data)
					}
				}
			}
		}
	}()
	defer func() { close(stop); <-loopDone }()
	if err := n.Campaign(ctx); err != nil {
		t.Fatal(err)
	}
	// Propose blocks until the node leads, which needs the vote to be
	// persisted through the append thread first.
	if err := n.Propose(ctx, []byte("z")); err != nil {
		t.Fatal(err)
	}
	if got := <-applied; got != "z" {
		t.Fatalf("applied %q", got)
	}
	if st := n.Status(); st.Applied != 3 || st.Commit != 3 {
		t.Fatalf("status: %+v", st.BasicStatus)
	}
}

func TestStartNodeNeedsPeers(t *testing.T) {
	defer func() {
		if r := recover(); r != "no peers given; use RestartNode instead" {
			t.Fatalf("recovered %v", r)
		}
	}()
	StartNode(rnConfig(1, NewMemoryStorage()), nil)
}

// StartNode on a storage that already has state keeps that state: the
// failed bootstrap is only logged.
func TestStartNodeOnNonEmptyStorage(t *testing.T) {
	s := rnStorage(t, 5, 1, 2)
	n := StartNode(rnConfig(1, s), []Peer{{ID: 1}})
	defer n.Stop()
	st := n.Status()
	if got := st.Config.Voters[0].Slice(); len(got) != 2 || st.Commit != 5 {
		t.Fatalf("status: %+v, voters %v", st.BasicStatus, got)
	}
}
