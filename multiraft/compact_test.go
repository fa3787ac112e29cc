package multiraft

import (
	"testing"

	"github.com/raftkit/raft/raftpb"
)

// A group compacts its log at an applied index; a member that missed the
// compacted entries gets the snapshot (restored through
// Application.Restore), then the entries after it.
func TestCompactAndSnapshotToLaggingMember(t *testing.T) {
	c := newManualCluster(t, 3, announceAtOnce)
	c.createGroup(1, 1, 2)
	c.settle()
	c.elect(1, 1)
	// Host 3 joins while cut off, so it misses everything until the
	// log is compacted.
	c.net.Cut(3, true)
	if err := c.hosts[3].CreateGroup(GroupConfig{ID: 1, Join: true}); err != nil {
		t.Fatal(err)
	}
	if err := c.hosts[1].ProposeConfChange(1, raftpb.ConfChange{Type: raftpb.ConfChangeAddNode, NodeID: 3}); err != nil {
		t.Fatal(err)
	}
	c.propose(1, 1, "a")
	c.propose(1, 1, "b")
	c.settle()
	applied := c.status(1, 1).Applied
	for _, id := range []HostID{1, 2} {
		if err := c.hosts[id].Compact(1, applied, []byte("state-ab")); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.hosts[1].Compact(1, applied+10, []byte("future")); err != nil {
		t.Fatal(err)
	}
	c.settle()
	if n := c.hosts[1].Stats().CompactsRefused; n != 1 {
		t.Fatalf("%d compactions refused, want 1 (the one past the applied index)", n)
	}
	st, _ := c.store[1].Open(1)
	if first, _ := st.FirstIndex(); first != applied+1 {
		t.Fatalf("log starts at %d after compacting at %d", first, applied)
	}
	if snap, _ := st.Snapshot(); string(snap.Data) != "state-ab" || len(snap.Metadata.ConfState.Voters) != 3 {
		t.Fatalf("stored snapshot %+v", snap.Metadata)
	}

	c.net.Cut(3, false)
	c.tick(5)
	c.propose(1, 1, "c")
	c.settle()
	if got := c.apps[3].restored[1]; got != "state-ab" {
		t.Fatalf("lagging member restored %q: %s", got, c.describe(1))
	}
	if got := c.apps[3].applied[1]; len(got) != 1 || got[0] != "c" {
		t.Fatalf("lagging member applied %v after the snapshot, want [c]", got)
	}
	if m := c.status(3, 1).Members; len(m) != 3 {
		t.Fatalf("lagging member sees members %v", m)
	}
}

// A host restarting after a compaction restores the stored snapshot, then
// applies only the entries after it.
func TestRestartAfterCompaction(t *testing.T) {
	c := newManualCluster(t, 3, announceAtOnce)
	c.createGroup(1)
	c.settle()
	c.elect(1, 1)
	c.propose(1, 1, "a")
	c.settle()
	applied := c.status(2, 1).Applied
	if err := c.hosts[2].Compact(1, applied, []byte("state-a")); err != nil {
		t.Fatal(err)
	}
	c.propose(1, 1, "b")
	c.settle()
	_ = c.hosts[2].Close()
	h := c.start(2)
	if err := h.CreateGroup(GroupConfig{ID: 1, Members: c.ids}); err != nil {
		t.Fatal(err)
	}
	c.settle()
	if got := c.apps[2].restored[1]; got != "state-a" {
		t.Fatalf("restarted host restored %q", got)
	}
	if got := c.apps[2].applied[1]; len(got) != 1 || got[0] != "b" {
		t.Fatalf("restarted host applied %v, want [b]", got)
	}
}
