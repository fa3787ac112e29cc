package kvservice

import (
	"context"
	"errors"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/raftkit/raft"
	"github.com/raftkit/raft/internal/testport"
	"github.com/raftkit/raft/raftpb"
	"github.com/raftkit/raft/transport"
)

// localCluster runs members in this process, on loopback ports picked at
// start.
type localCluster struct {
	t       *testing.T
	dir     string
	members []Member
	srv     map[uint64]*Server
	tweak   func(*Config)
}

// freeLoopbackAddr returns an address a member binds later, perhaps more
// than once (a restart): testport keeps it away from the kernel's
// ephemeral ports and from other test processes, which once took a
// restarted member's port in between ("bind: address already in use").
func freeLoopbackAddr(t *testing.T) string { return testport.Addr(t) }

func newMember(t *testing.T, id uint64) Member {
	return Member{ID: id, PeerAddr: freeLoopbackAddr(t), HTTPAddr: freeLoopbackAddr(t)}
}

// newLocalCluster starts n voters and waits for a leader.
func newLocalCluster(t *testing.T, n int, tweak func(*Config)) *localCluster {
	c := &localCluster{t: t, dir: t.TempDir(), srv: map[uint64]*Server{}, tweak: tweak}
	for id := uint64(1); id <= uint64(n); id++ {
		c.members = append(c.members, newMember(t, id))
	}
	for _, m := range c.members {
		if err := c.start(m, c.members, nil); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, s := range c.srv {
			s.Stop()
		}
	})
	c.waitLeader()
	return c
}

func (c *localCluster) config(m Member, initial, join []Member) Config {
	cfg := Config{ID: m.ID, ClusterID: 0x5ec, Dir: filepath.Join(c.dir, strconv.FormatUint(m.ID, 10)),
		PeerAddr: m.PeerAddr, HTTPAddr: m.HTTPAddr, InitialCluster: initial, Join: join,
		TickInterval: 20 * time.Millisecond, ElectionTicks: 50, RequestTimeout: 10 * time.Second}
	if c.tweak != nil {
		c.tweak(&cfg)
	}
	return cfg
}

func (c *localCluster) start(m Member, initial, join []Member) error {
	s, err := New(c.config(m, initial, join))
	if err != nil {
		return err
	}
	c.srv[m.ID] = s
	return nil
}

// waitFor polls cond for up to 20s: generous, so that a loaded 2-core
// machine still passes; the conditions are reached in well under a second
// when idle.
func (c *localCluster) waitFor(what string, cond func() bool) {
	c.t.Helper()
	pollUntil(c.t, 20*time.Second, what, cond)
}

// pollUntil polls cond every 20 ms until it holds, failing t after d.
func pollUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitLeader waits until every running member's loop knows the same
// leader (requests are refused with ErrNoLeader until then).
func (c *localCluster) waitLeader() uint64 {
	c.t.Helper()
	var lead uint64
	c.waitFor("a leader known to every member", func() bool {
		lead = 0
		for _, s := range c.srv {
			l := s.knownLeader()
			if l == 0 || (lead != 0 && l != lead) {
				return false
			}
			lead = l
		}
		return lead != 0
	})
	return lead
}

// retry repeats op while its error says the outcome is unknown or nothing
// was done for want of a leader (a loaded machine may see a leader change):
// every op here is safe to repeat.
func (c *localCluster) retry(op func() error) error {
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := op()
		if !errors.Is(err, ErrLeaderChanged) && !errors.Is(err, ErrNoLeader) && !errors.Is(err, ErrTimeout) ||
			time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// knownLeader is the leader as the server's loop last recorded it: the
// one requests are checked against.
func (s *Server) knownLeader() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.lead
}

// TestRemovedIDRefusedForever removes a member and checks that its ID can
// never come back: AddMember refuses it with a clear error (409 over HTTP),
// a conf change that slips past that check is refused when applied, the
// removed member's data directory does not start again, and the remaining
// members' transports refuse a process that still claims the ID.
func TestRemovedIDRefusedForever(t *testing.T) {
	c := newLocalCluster(t, 3, nil)
	ctx := context.Background()
	s1 := c.srv[1]
	if err := c.retry(func() error { _, err := s1.RemoveMember(ctx, 3); return err }); err != nil && !errors.Is(err, ErrUnknownMember) {
		t.Fatal(err)
	}
	<-c.srv[3].Done()
	if err := c.srv[3].Err(); !errors.Is(err, ErrRemoved) {
		t.Fatalf("removed member stopped with %v", err)
	}
	delete(c.srv, 3)

	again := newMember(t, 3)
	if _, err := s1.AddMember(ctx, again); !errors.Is(err, ErrMemberRemoved) {
		t.Fatalf("re-adding a removed ID: %v", err)
	}
	var apiErr *APIError
	err := (&Client{}).AddMember(ctx, c.srv[2].HTTPAddr(), again)
	if !errors.As(err, &apiErr) || apiErr.Code != 409 {
		t.Fatalf("re-adding over HTTP: %v", err)
	}
	// A proposal that skipped the check (a removal committed between the
	// check and the entry) is refused on apply, by every member alike.
	if err := c.retry(func() error { _, err := s1.changeMembers(ctx, raftpb.ConfChangeAddNode, again); return err }); !errors.Is(err, ErrMemberRemoved) {
		t.Fatalf("conf change for a removed ID applied: %v", err)
	}
	for _, id := range []uint64{1, 2} {
		id := id
		c.waitFor("both members to apply the refused change", func() bool {
			return c.srv[id].Status().Applied >= s1.Status().Applied
		})
		if st := c.srv[id].Status(); len(st.Voters) != 2 || len(st.Members) != 2 {
			t.Fatalf("member %d after the refused re-add: voters %v members %v", id, st.Voters, st.Members)
		}
	}

	if _, err := New(c.config(c.members[2], c.members, nil)); !errors.Is(err, ErrRemoved) {
		t.Fatalf("restarting the removed member's directory: %v", err)
	}

	// A stale process claiming ID 3 knocks on member 1's transport: after
	// the grace period it is refused at the handshake.
	before := s1.tr.Stats().HandshakesRefused
	stale, err := transport.New(transport.Config{ClusterID: 0x5ec, ID: 3, ListenAddr: "127.0.0.1:0",
		Raft: nopRaft{}, Backoff: transport.Backoff{Initial: 20 * time.Millisecond, Max: 100 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	defer stale.Close()
	if err := stale.AddPeer(1, s1.PeerAddr()); err != nil {
		t.Fatal(err)
	}
	c.waitFor("member 1 to refuse the removed ID's stream", func() bool {
		stale.Send([]raftpb.Message{{Type: raftpb.MsgHeartbeat, From: 3, To: 1, Term: 100}})
		return s1.tr.Stats().HandshakesRefused > before
	})
	if st := s1.Status(); st.Term >= 100 {
		t.Fatalf("the removed ID's message reached raft: term %d", st.Term)
	}
}

// nopRaft is a transport.Raft that ignores everything.
type nopRaft struct{}

func (nopRaft) Process(context.Context, raftpb.Message) error { return nil }
func (nopRaft) ReportUnreachable(uint64)                      {}
func (nopRaft) ReportSnapshot(uint64, raft.SnapshotStatus)    {}

// TestLearnerPromotedOnceCaughtUp adds a member that is not started: it
// joins as a learner, so the three voters keep committing. Asking to promote
// it before it has caught up is refused. Once started, it catches up and the
// leader promotes it to voter on its own.
func TestLearnerPromotedOnceCaughtUp(t *testing.T) {
	c := newLocalCluster(t, 3, nil)
	ctx := context.Background()
	lead := c.waitLeader()
	for i := 0; i < 150; i++ {
		if err := c.retry(func() error { _, err := c.srv[lead].Put(ctx, "k"+strconv.Itoa(i), "v"); return err }); err != nil {
			t.Fatal(err)
		}
	}
	m4 := newMember(t, 4)
	if err := c.retry(func() error { _, err := c.srv[lead].AddMember(ctx, m4); return err }); err != nil && !errors.Is(err, ErrMemberExists) {
		t.Fatal(err)
	}
	st := c.srv[lead].Status()
	if len(st.Voters) != 3 || len(st.Learners) != 1 || st.Learners[0] != 4 {
		t.Fatalf("after adding 4: voters %v learners %v", st.Voters, st.Learners)
	}
	// Stop one voter: with 4 a voter, 2 of 4 could not commit; as a
	// learner, 2 of 3 still do.
	other := lead%3 + 1
	c.srv[other].Stop()
	delete(c.srv, other)
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := c.retry(func() error { _, err := c.srv[lead].Put(wctx, "while-4-is-down", "v"); return err }); err != nil {
		t.Fatalf("write with an unstarted learner and a voter down: %v", err)
	}
	if _, err := c.srv[lead].PromoteMember(ctx, 4); !errors.Is(err, ErrNotCaughtUp) {
		t.Fatalf("promoting a learner that never started: %v", err)
	}
	if err := c.start(m4, nil, c.members); err != nil {
		t.Fatal(err)
	}
	c.waitFor("member 4 to be promoted", func() bool {
		st := c.srv[lead].Status()
		return len(st.Voters) == 4 && len(st.Learners) == 0
	})
	c.waitFor("member 4 to apply the last write", func() bool {
		_, ok, _ := c.srv[4].Get(ctx, "while-4-is-down", true)
		return ok
	})
}
