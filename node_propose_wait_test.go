package raft

import (
	"context"
	"testing"

	pb "github.com/raftkit/raft/raftpb"
)

// readyLoop runs a minimal application loop for n on another goroutine:
// persist each Ready's entries and HardState to s, pass its messages to
// sent (if not nil), Advance. stop ends it and waits for it.
func readyLoop(n Node, s *MemoryStorage, sent chan<- pb.Message) (stop func()) {
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case rd := <-n.Ready():
				if !IsEmptyHardState(rd.HardState) {
					_ = s.SetHardState(rd.HardState)
				}
				_ = s.Append(rd.Entries)
				for _, m := range rd.Messages {
					if sent != nil {
						sent <- m
					}
				}
				n.Advance()
			case <-quit:
				return
			}
		}
	}()
	return func() { close(quit); <-done }
}

// A leader Node's Propose recycles what it waits with, entry included: the
// leader copies the entry into its log and keeps no reference to it, so in
// steady state a proposal allocates nothing of its own (the Ready loop's
// occasional log growth aside).
func TestNodeProposeReusesItsWait(t *testing.T) {
	s := rnStorage(t, 1, 1)
	n := RestartNode(rnConfig(1, s))
	defer n.Stop()
	stop := readyLoop(n, s, nil)
	defer stop()
	ctx := context.Background()
	if err := n.Campaign(ctx); err != nil {
		t.Fatal(err)
	}
	data := []byte("x")
	propose := func() {
		if err := n.Propose(ctx, data); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 100; i++ { // until it leads, and arrays reach their sizes
		propose()
	}
	if allocs := testing.AllocsPerRun(500, propose); allocs >= 1 {
		t.Fatalf("%.2f allocations per proposal, want less than 1", allocs)
	}
}

// A follower Node forwards a proposal with its entry, which the follower's
// outbox still holds when Propose returns: that entry must not be reused
// for the next proposal.
func TestNodeForwardedProposalKeepsItsEntry(t *testing.T) {
	s := rnStorage(t, 1, 1, 2)
	if err := s.SetHardState(pb.HardState{Term: 1, Commit: 1}); err != nil {
		t.Fatal(err)
	}
	n := RestartNode(rnConfig(1, s))
	defer n.Stop()
	sent := make(chan pb.Message, 64)
	stop := readyLoop(n, s, sent)
	defer stop()
	ctx := context.Background()
	// Node 2 leads term 1.
	if err := n.Step(ctx, pb.Message{Type: pb.MsgHeartbeat, From: 2, To: 1, Term: 1}); err != nil {
		t.Fatal(err)
	}
	want := []string{"a", "b", "c", "d"}
	for _, d := range want {
		if err := n.Propose(ctx, []byte(d)); err != nil {
			t.Fatal(err)
		}
	}
	var props []pb.Message
	for len(props) < len(want) {
		if m := <-sent; m.Type == pb.MsgProp {
			props = append(props, m)
		}
	}
	for i, m := range props {
		if m.To != 2 || len(m.Entries) != 1 || string(m.Entries[0].Data) != want[i] {
			t.Fatalf("forwarded proposal %d: %s, want %q to 2", i, DescribeMessage(m, nil), want[i])
		}
	}
}
