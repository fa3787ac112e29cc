package kvservice

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/raftkit/raft/raftpb"
)

// startJoiner starts member m, added at runtime, with an empty Dir and the
// original members to join; hold, if not nil, runs before each apply.
func (c *shardedCluster) startJoiner(m Member, hold func()) {
	c.t.Helper()
	cfg := c.config(1)
	cfg.ID, cfg.PeerAddr, cfg.HTTPAddr = m.ID, m.PeerAddr, m.HTTPAddr
	cfg.Dir = filepath.Join(c.dir, strconv.FormatUint(m.ID, 10))
	cfg.InitialCluster, cfg.Join = nil, c.members
	if hold != nil {
		cfg.hooks = &testHooks{beforeApply: func([]raftpb.Entry) error { hold(); return nil }}
	}
	s, err := NewSharded(cfg)
	if err != nil {
		c.t.Fatal(err)
	}
	c.srv[m.ID] = s
}

// waitMembership waits until every running member sees, in every shard,
// the voters and learners given.
func (c *shardedCluster) waitMembership(voters, learners []uint64) {
	c.t.Helper()
	c.waitFor(fmt.Sprintf("voters %v, learners %v in every shard on every member", voters, learners), func() bool {
		for _, s := range c.srv {
			for _, sh := range s.Status().Shards {
				if !slices.Equal(sh.Voters, voters) || !slices.Equal(sh.Learners, learners) {
					return false
				}
			}
		}
		return true
	})
}

// TestShardedMembership grows a 3-member sharded cluster by a 4th member
// (learner of every shard, caught up by the shards' leaders, promoted),
// removes an original member, and restarts the new one: every shard of
// every member agrees on the membership throughout, the keys written
// before and after are read through the new member, and the removed
// member stops.
func TestShardedMembership(t *testing.T) {
	c := newShardedCluster(t, 3, 4, nil)
	keys := map[string]string{}
	c.putPrefixed(keys, 1, "before")
	ctx := context.Background()
	if _, err := c.srv[1].AddMember(ctx, c.members[1]); !errors.Is(err, ErrMemberExists) {
		t.Errorf("adding member 2 again: %v, want ErrMemberExists", err)
	}
	if _, err := c.srv[1].RemoveMember(ctx, 9); !errors.Is(err, ErrUnknownMember) {
		t.Errorf("removing unknown member 9: %v, want ErrUnknownMember", err)
	}

	m4 := newMember(t, 4)
	if _, err := c.srv[2].AddMember(ctx, m4); err != nil {
		t.Fatalf("adding member 4: %v", err)
	}
	c.waitMembership([]uint64{1, 2, 3}, []uint64{4})
	c.putPrefixed(keys, 3, "added")
	checkEarlyPromoteRefused(t, c, m4)
	c.checkKeys(4, keys)

	// Member 1 forwards the promotion to the learner, which decides.
	if _, err := c.srv[1].PromoteMember(ctx, 4); err != nil {
		t.Fatalf("promoting member 4 once caught up, through member 1: %v", err)
	}
	c.waitMembership([]uint64{1, 2, 3, 4}, nil)
	if st := c.srv[1].Status(); !slices.Equal(st.Voters, []uint64{1, 2, 3, 4}) || len(st.Learners) != 0 {
		t.Errorf("status voters %v learners %v", st.Voters, st.Learners)
	}
	c.putPrefixed(keys, 4, "promoted")
	checkMember1Removed(t, c)
	c.putPrefixed(keys, 3, "removed")

	// Restart the new member: its shards come back with their members.
	c.stop(4)
	c.putPrefixed(keys, 2, "down")
	c.startJoiner(m4, nil)
	c.waitSettled()
	c.waitMembership([]uint64{2, 3, 4}, nil)
	c.waitConverged()
	c.checkKeys(4, keys)
	if ms := c.srv[4].Members(); len(ms) != 3 || ms[0].ID != 2 || ms[0].PeerAddr != c.members[1].PeerAddr {
		t.Errorf("restarted member 4's members: %+v", ms)
	}
}

// putPrefixed writes twelve keys named prefix00..prefix11 with value prefix
// through member via, recording them in keys.
func (c *shardedCluster) putPrefixed(keys map[string]string, via uint64, prefix string) {
	for i := 0; i < 12; i++ {
		k := fmt.Sprintf("%s%02d", prefix, i)
		c.put(via, k, prefix)
		keys[k] = prefix
	}
}

// checkEarlyPromoteRefused starts learner m4 with its applies held and
// checks that promoting it is refused in every shard, directly, over HTTP
// and through another member; it then releases the applies and waits for
// the cluster to converge.
func checkEarlyPromoteRefused(t *testing.T, c *shardedCluster, m4 Member) {
	t.Helper()
	ctx := context.Background()
	// Promoting before the new member caught up is refused, shard by
	// shard: its applies are held, so it has applied nothing.
	release := make(chan struct{})
	c.startJoiner(m4, func() { <-release })
	_, err := c.srv[4].PromoteMember(ctx, 4)
	var se *ShardsError
	if !errors.Is(err, ErrNotCaughtUp) || !errors.As(err, &se) || len(se.Pending) != 4 {
		t.Fatalf("promoting a learner that applied nothing: %v, want ErrNotCaughtUp pending in all 4 shards", err)
	}
	rec := httptest.NewRecorder()
	c.srv[4].Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/members/4/promote", nil))
	var resp ErrorResponse
	if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil || rec.Code != http.StatusConflict || len(resp.ShardsPending) != 4 {
		t.Errorf("promote over HTTP before catching up: %d %s, want 409 naming 4 pending shards", rec.Code, rec.Body)
	}
	// Asked of another member, the request is forwarded to the learner.
	if _, err := c.srv[2].PromoteMember(ctx, 4); !errors.Is(err, ErrNotCaughtUp) || !errors.As(err, &se) || len(se.Pending) != 4 {
		t.Errorf("promoting the held learner through member 2: %v, want its ErrNotCaughtUp naming 4 shards", err)
	}
	close(release)
	c.waitSettled()
	c.waitConverged()
}

// checkMember1Removed removes original member 1, which leads some shards,
// and checks it stops, cannot restart and cannot be added back.
func checkMember1Removed(t *testing.T, c *shardedCluster) {
	t.Helper()
	ctx := context.Background()
	removed := c.srv[1]
	if _, err := c.srv[2].RemoveMember(ctx, 1); err != nil {
		t.Fatalf("removing member 1: %v", err)
	}
	delete(c.srv, 1)
	c.waitMembership([]uint64{2, 3, 4}, nil)
	waitRemoved(t, removed)
	// A removed member is refused before it listens: its peer address is
	// no longer its own (held here, as another process might).
	if ln, err := net.Listen("tcp", c.members[0].PeerAddr); err == nil {
		defer ln.Close()
	}
	if s, err := NewSharded(c.config(1)); !errors.Is(err, ErrRemoved) {
		if err == nil {
			s.Stop()
		}
		t.Errorf("restarting removed member 1: %v, want ErrRemoved", err)
	}
	if _, err := c.srv[3].AddMember(ctx, c.members[0]); !errors.Is(err, ErrMemberRemoved) {
		t.Errorf("adding removed member 1 back: %v, want ErrMemberRemoved", err)
	}
	c.waitSettled()
}

// waitRemoved waits until s, removed from the cluster, stops by itself.
func waitRemoved(t *testing.T, s *ShardedServer) {
	t.Helper()
	select {
	case <-s.Done():
		if !errors.Is(s.Err(), ErrRemoved) {
			t.Errorf("removed member %d stopped with %v, want ErrRemoved", s.ID(), s.Err())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("removed member %d did not stop", s.ID())
	}
}

// hostMembers returns the members raft has in each shard of s (its
// progress tracker, as the host reports it).
func hostMembers(t *testing.T, s *ShardedServer) [][]uint64 {
	t.Helper()
	out := make([][]uint64, len(s.reps))
	for i, r := range s.reps {
		gs, err := s.host.Status(r.group())
		if err != nil {
			t.Fatal(err)
		}
		out[i] = gs.Members
	}
	return out
}

// TestShardedMembershipAfterSnapshotRestart: the shards snapshot, then
// their membership changes (a 4th member, caught up from the snapshots,
// replaces member 3), then member 2 restarts. Raft restores a shard's
// configuration from its snapshot, which predates the changes: the
// restart must have raft apply them again, though the store applied them
// already, or member 2's shards would replicate to the removed member and
// count the wrong quorum.
func TestShardedMembershipAfterSnapshotRestart(t *testing.T) {
	c := newShardedCluster(t, 3, 4, func(cfg *Config) { cfg.SnapshotCount = 10 })
	keys := fillShards(c, 60)
	if metricOf(t, c.srv[2], "raftkv_snapshots_taken_total") < 4 {
		t.Fatal("the shards took no snapshots")
	}
	ctx := context.Background()
	m4 := newMember(t, 4)
	if _, err := c.srv[1].AddMember(ctx, m4); err != nil {
		t.Fatalf("adding member 4: %v", err)
	}
	c.startJoiner(m4, nil)
	c.waitSettled()
	c.waitConverged()
	if metricOf(t, c.srv[4], "raftkv_snapshots_installed_total") < 1 {
		t.Error("member 4 caught up without a snapshot")
	}
	if err := retryRequest(func() error { _, err := c.srv[4].PromoteMember(ctx, 4); return err }); err != nil {
		t.Fatalf("promoting member 4: %v", err)
	}
	if _, err := c.srv[1].RemoveMember(ctx, 3); err != nil {
		t.Fatalf("removing member 3: %v", err)
	}
	waitRemoved(t, c.srv[3])
	delete(c.srv, 3)
	c.waitMembership([]uint64{1, 2, 4}, nil)
	c.stop(2)
	c.start(2)
	c.waitSettled()
	for i, ms := range hostMembers(t, c.srv[2]) {
		if !slices.Equal(ms, []uint64{1, 2, 4}) {
			t.Errorf("restarted member 2, shard %d: raft's members %v, want [1 2 4]", i, ms)
		}
	}
	c.waitMembership([]uint64{1, 2, 4}, nil)
	c.checkKeys(4, keys)
	c.checkKeys(2, keys)
}

// TestShardedMembershipCutShort: an addition that cannot finish (two of
// three members down: no shard can commit) answers with the shards done
// and pending, over HTTP too; once the members are back, repeating it
// finishes it, whichever shards took it meanwhile.
func TestShardedMembershipCutShort(t *testing.T) {
	c := newShardedCluster(t, 3, 4, nil)
	c.stop(2)
	c.stop(3)
	m4 := newMember(t, 4)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, err := c.srv[1].AddMember(ctx, m4)
	var se *ShardsError
	if !errors.As(err, &se) || !errors.Is(err, ErrTimeout) || len(se.Pending) == 0 || len(se.Done)+len(se.Pending) != 4 {
		t.Fatalf("adding a member without a quorum: %v, want a ShardsError (ErrTimeout) over the 4 shards", err)
	}
	rec := httptest.NewRecorder()
	body := fmt.Sprintf(`{"id":4,"peer_addr":%q,"http_addr":%q}`, m4.PeerAddr, m4.HTTPAddr)
	req := httptest.NewRequest(http.MethodPost, "/v1/members", strings.NewReader(body))
	c.srv[1].Handler().ServeHTTP(rec, req.WithContext(ctx))
	var resp ErrorResponse
	if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil || rec.Code != http.StatusGatewayTimeout ||
		len(resp.ShardsPending)+len(resp.ShardsDone) != 4 || len(resp.ShardsPending) == 0 || resp.Outcome != "unknown" {
		t.Errorf("adding over HTTP without a quorum: %d %s, want 504 naming the shards done and pending", rec.Code, rec.Body)
	}
	c.start(2)
	c.start(3)
	c.waitSettled()
	if err := retryRequest(func() error { _, err := c.srv[2].AddMember(context.Background(), m4); return err }); err != nil {
		t.Fatalf("repeating the addition: %v", err)
	}
	c.waitMembership([]uint64{1, 2, 3}, []uint64{4})
	if _, err := c.srv[3].AddMember(context.Background(), m4); !errors.Is(err, ErrMemberExists) {
		t.Errorf("adding member 4 once more: %v, want ErrMemberExists", err)
	}
}

// TestShardedConfigChangesReplayedOnRestart: the shards' configuration
// changes are applied by the store but not covered by a WAL snapshot (as
// after a crash right after them): a restarted member has raft apply them
// again, or raft would restart with the configuration of the last
// snapshot, still naming the removed member.
func TestShardedConfigChangesReplayedOnRestart(t *testing.T) {
	c := newShardedCluster(t, 3, 4, func(cfg *Config) {
		cfg.SnapshotCount = 10
		cfg.hooks = &testHooks{noConfigSnapshot: true}
	})
	keys := fillShards(c, 60) // every shard snapshots
	ctx := context.Background()
	if _, err := c.srv[1].RemoveMember(ctx, 3); err != nil {
		t.Fatalf("removing member 3: %v", err)
	}
	waitRemoved(t, c.srv[3])
	delete(c.srv, 3)
	c.waitMembership([]uint64{1, 2}, nil)
	c.stop(2)
	c.start(2)
	c.waitSettled()
	for i, ms := range hostMembers(t, c.srv[2]) {
		if !slices.Equal(ms, []uint64{1, 2}) {
			t.Errorf("restarted member 2, shard %d: raft's members %v, want [1 2]", i, ms)
		}
	}
	c.checkKeys(2, keys)
}

// TestMirrorConfChange: a shard's configuration follows raft's simple
// changes, and a joining member's replay of a bootstrap (changes without
// addresses) takes the addresses from a later change's book.
func TestMirrorConfChange(t *testing.T) {
	s := &ShardedServer{lg: zap.NewNop()}
	r := &shardRep{cfg: shardConfig{Members: map[uint64]Member{}, Removed: map[uint64]bool{}}}
	m := func(id uint64) Member {
		return Member{ID: id, PeerAddr: fmt.Sprintf("p%d", id), HTTPAddr: fmt.Sprintf("h%d", id)}
	}
	cc := func(typ raftpb.ConfChangeType, id uint64, book ...Member) raftpb.ConfChange {
		var ctx []byte
		if len(book) > 0 {
			ctx, _ = json.Marshal(shardConfContext{Member: book[0], Book: book[1:]})
		}
		return raftpb.ConfChange{Type: typ, NodeID: id, Context: ctx}
	}
	steps := []struct {
		name             string
		cc               raftpb.ConfChange
		voters, learners []uint64
		addrs            map[uint64]string // peer addresses expected
		removed          []uint64
	}{
		{"bootstrap 1", cc(raftpb.ConfChangeAddNode, 1), []uint64{1}, nil, map[uint64]string{1: ""}, nil},
		{"bootstrap 2", cc(raftpb.ConfChangeAddNode, 2), []uint64{1, 2}, nil, map[uint64]string{1: "", 2: ""}, nil},
		{"add learner 3 with the book", cc(raftpb.ConfChangeAddLearnerNode, 3, m(3), m(1), m(2)),
			[]uint64{1, 2}, []uint64{3}, map[uint64]string{1: "p1", 2: "p2", 3: "p3"}, nil},
		{"promote 3", cc(raftpb.ConfChangeAddNode, 3, m(3)), []uint64{1, 2, 3}, nil,
			map[uint64]string{1: "p1", 2: "p2", 3: "p3"}, nil},
		{"demote 2", cc(raftpb.ConfChangeAddLearnerNode, 2, m(2)), []uint64{1, 3}, []uint64{2},
			map[uint64]string{1: "p1", 2: "p2", 3: "p3"}, nil},
		{"remove 2", cc(raftpb.ConfChangeRemoveNode, 2), []uint64{1, 3}, nil,
			map[uint64]string{1: "p1", 3: "p3"}, []uint64{2}},
	}
	for _, st := range steps {
		s.mirrorConfChange(r, st.cc)
		cs := r.cfg.ConfState
		if !slices.Equal(cs.Voters, st.voters) || !slices.Equal(cs.Learners, st.learners) {
			t.Fatalf("%s: voters %v learners %v, want %v %v", st.name, cs.Voters, cs.Learners, st.voters, st.learners)
		}
		got := map[uint64]string{}
		for id, mm := range r.cfg.Members {
			got[id] = mm.PeerAddr
		}
		if fmt.Sprint(got) != fmt.Sprint(st.addrs) {
			t.Fatalf("%s: members %v, want %v", st.name, got, st.addrs)
		}
		for _, id := range st.removed {
			if !r.cfg.Removed[id] {
				t.Fatalf("%s: %d not recorded as removed", st.name, id)
			}
		}
	}
}

// TestShardedPromoteWithHTTPS: with HTTPS, a member does not forward a
// promotion (the learner's certificate need not chain to a CA it trusts):
// it names the learner to ask instead (ErrAskMember, 421).
func TestShardedPromoteWithHTTPS(t *testing.T) {
	ca := newTestCA(t, "raftkit test CA")
	c := newShardedCluster(t, 3, 4, func(cfg *Config) {
		cfg.HTTPTLS = &tls.Config{Certificates: []tls.Certificate{ca.leaf(t, int64(cfg.ID)+100)}}
	})
	m4 := newMember(t, 4)
	if _, err := c.srv[1].AddMember(context.Background(), m4); err != nil {
		t.Fatalf("adding member 4: %v", err)
	}
	c.waitMembership([]uint64{1, 2, 3}, []uint64{4})
	rec := httptest.NewRecorder()
	c.srv[2].Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/members/4/promote", nil))
	if rec.Code != http.StatusMisdirectedRequest || !strings.Contains(rec.Body.String(), m4.HTTPAddr) {
		t.Errorf("promoting member 4 through member 2 with HTTPS: %d %s, want 421 naming its address", rec.Code, rec.Body)
	}
}

// TestShardedLearnerPromotesItself adds a fourth member and starts it:
// once caught up with every shard it becomes a voter of every shard with
// nobody asking for it, and serves writes as one.
func TestShardedLearnerPromotesItself(t *testing.T) {
	c := newShardedCluster(t, 3, 4, nil)
	keys := map[string]string{}
	c.putPrefixed(keys, 1, "before")
	m4 := newMember(t, 4)
	if _, err := c.srv[1].AddMember(context.Background(), m4); err != nil {
		t.Fatal(err)
	}
	c.waitMembership([]uint64{1, 2, 3}, []uint64{4})
	c.startJoiner(m4, nil)
	c.waitMembership([]uint64{1, 2, 3, 4}, nil)
	c.putPrefixed(keys, 4, "promoted")
	c.checkKeys(4, keys)
}

// TestShardedStaleLearnerAddRefused: member 4, added and promoted, is the
// target of a copy of its addition as a learner that commits late in every
// shard (AddMember's proposals are retried: a retry can commit after the
// promotion). Every shard's apply refuses it: member 4 stays a voter of
// every shard on every member, never shown as a learner meanwhile, and can
// lead them.
func TestShardedStaleLearnerAddRefused(t *testing.T) {
	core, logs := observer.New(zap.WarnLevel)
	c := newShardedCluster(t, 3, 2, func(cfg *Config) { cfg.Logger = zap.New(core) })
	m4 := newMember(t, 4)
	if _, err := c.srv[1].AddMember(context.Background(), m4); err != nil {
		t.Fatal(err)
	}
	c.startJoiner(m4, nil)
	c.waitMembership([]uint64{1, 2, 3, 4}, nil)
	c.waitConverged()
	logs.TakeAll() // only the refusals of the copies proposed below count
	// A copy proposed to a shard's leader can be lost (an election on a
	// loaded machine drops it, or the leader a Status named has just been
	// deposed), so each shard not yet refused by every member gets a new
	// copy every election timeout, on the leader every member names then.
	lastTry := make([]time.Time, c.shards)
	c.waitFor("a late learner addition of voter 4 refused by every member in every shard", func() bool {
		c.checkVoters4()
		done := lateAddsRefused(logs, c.shards, len(c.srv))
		for i := range c.shards {
			if !done[i] && time.Since(lastTry[i]) > 2*time.Second && c.proposeLateAdd(m4, i) {
				lastTry[i] = time.Now()
			}
		}
		return !slices.Contains(done, false)
	})
	c.checkVoters4()
	c.waitConverged()
	c.waitMembership([]uint64{1, 2, 3, 4}, nil)
	// Raft's configuration too, not only its mirror: a learner could not
	// take the shards' leadership.
	if err := c.srv[1].TransferShards(context.Background(), 4, []int{0, 1}); err != nil {
		t.Fatalf("moving both shards to member 4: %v", err)
	}
	c.put(4, "after", "late-add")
}

// checkVoters4 fails the test unless every member shows voters 1 to 4
// and no learner in every shard.
func (c *shardedCluster) checkVoters4() {
	c.t.Helper()
	for _, m := range c.srv {
		for i, sh := range m.Status().Shards {
			if !slices.Equal(sh.Voters, []uint64{1, 2, 3, 4}) || len(sh.Learners) != 0 {
				c.t.Fatalf("member %d, shard %d: voters %v learners %v after a late learner addition of voter 4",
					m.cfg.ID, i, sh.Voters, sh.Learners)
			}
		}
	}
}

// proposeLateAdd proposes adding member m, a voter, to shard i as a
// learner, on the shard's leader if every member names the same one;
// it reports whether it proposed.
func (c *shardedCluster) proposeLateAdd(m Member, i int) bool {
	var lead uint64
	for _, s := range c.srv {
		l := s.Status().Shards[i].Leader
		if l == 0 || lead != 0 && l != lead {
			return false
		}
		lead = l
	}
	s := c.srv[lead]
	if s == nil {
		return false
	}
	cc, err := s.confChange(raftpb.ConfChangeAddLearnerNode, m, s.book.members())
	if err != nil {
		c.t.Fatal(err)
	}
	return s.host.ProposeConfChange(s.reps[i].group(), cc) == nil
}

// lateAddsRefused reports, shard by shard, whether members members logged
// refusing (ignoring) one same entry adding a voter as a learner.
func lateAddsRefused(logs *observer.ObservedLogs, shards, members int) []bool {
	type entry struct{ shard, index int64 }
	seen := map[entry]int{}
	done := make([]bool, shards)
	for _, e := range logs.FilterMessageSnippet("ignored adding a voter as a learner").All() {
		f := e.ContextMap()
		k := entry{f["shard"].(int64), int64(f["index"].(uint64))}
		if seen[k]++; seen[k] >= members && k.shard < int64(shards) {
			done[k.shard] = true
		}
	}
	return done
}

// TestDecodeConfChangeV2: a v2 entry holding one change with the automatic
// transition is what raft applies as a simple change, so the shard's
// mirror must see it as one; a joint change is not mirrored.
func TestDecodeConfChangeV2(t *testing.T) {
	simple := raftpb.ConfChangeV2{Changes: []raftpb.ConfChangeSingle{{Type: raftpb.ConfChangeAddLearnerNode, NodeID: 5}},
		Context: []byte("ctx")}
	data, err := simple.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	cc, ok := decodeConfChange(&raftpb.Entry{Type: raftpb.EntryConfChangeV2, Data: data})
	if !ok || cc.Type != raftpb.ConfChangeAddLearnerNode || cc.NodeID != 5 || string(cc.Context) != "ctx" {
		t.Fatalf("simple v2 change decoded as %+v, %v", cc, ok)
	}
	joint := simple
	joint.Changes = append(joint.Changes, raftpb.ConfChangeSingle{Type: raftpb.ConfChangeAddNode, NodeID: 6})
	if data, err = joint.Marshal(); err != nil {
		t.Fatal(err)
	}
	if _, ok := decodeConfChange(&raftpb.Entry{Type: raftpb.EntryConfChangeV2, Data: data}); ok {
		t.Fatalf("a joint change was decoded as a simple one")
	}
}
