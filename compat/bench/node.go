package bench

import (
	"context"
	"sync"
)

// nodeRig is a one-voter Node whose Ready loop runs in its own goroutine,
// persisting to a MemoryStorage, the way an application drives it.
type nodeRig struct {
	n    Node
	s    *MemoryStorage
	lead chan struct{}
	quit chan struct{}
	done sync.WaitGroup
}

func newNodeRig() *nodeRig {
	// A node restarted from a one-voter snapshot: no bootstrap entries to
	// apply before it may campaign.
	s := seededStorage(1)
	r := &nodeRig{n: RestartNode(config(1, s)), s: s, lead: make(chan struct{}), quit: make(chan struct{})}
	r.done.Add(1)
	go r.loop()
	if err := r.n.Campaign(context.Background()); err != nil {
		panic(err)
	}
	<-r.lead
	return r
}

func (r *nodeRig) loop() {
	defer r.done.Done()
	led, rounds := false, 0
	var applied uint64
	for {
		var rd Ready
		select {
		case rd = <-r.n.Ready():
		case <-r.quit:
			return
		}
		if !IsEmptyHardState(rd.HardState) {
			_ = r.s.SetHardState(rd.HardState)
		}
		_ = r.s.Append(rd.Entries)
		if n := len(rd.CommittedEntries); n != 0 {
			applied = rd.CommittedEntries[n-1].Index
		}
		if !led && rd.SoftState != nil && rd.SoftState.RaftState == StateLeader {
			led = true
			close(r.lead)
		}
		r.n.Advance()
		if rounds++; rounds%256 == 0 {
			compactTo(r.s, applied)
		}
	}
}

// stop ends the Ready loop, then the node.
func (r *nodeRig) stop() {
	close(r.quit)
	r.done.Wait()
	r.n.Stop()
}
