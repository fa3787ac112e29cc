package kvservice

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"
)

// leadersOn reports whether every running member sees member lead every
// shard listed.
func (c *shardedCluster) leadersOn(lead uint64, shards ...int) bool {
	for _, s := range c.srv {
		for _, i := range shards {
			if s.leaderNow(i) != lead {
				return false
			}
		}
	}
	return true
}

// watchesCaughtUp waits until every member's leader watch has recorded
// the leader its host reports for the shards given, so that a pull does
// not race the placement's own moves. The race it first worked around, a
// loss the watch noticed after a pull took its hold letting the hold go,
// is fixed (holds are per term; TestHoldSurvivesALossSeenLate).
func (c *shardedCluster) watchesCaughtUp(shards ...int) {
	c.t.Helper()
	c.waitFor(fmt.Sprintf("every member's watch to know the leaders of shards %v", shards), func() bool {
		for _, s := range c.srv {
			for _, i := range shards {
				if lead := s.leaderNow(i); lead == 0 || s.reps[i].leader() != lead {
					return false
				}
			}
		}
		return true
	})
}

// TestShardedTransferLeader moves the shards member 1 leads to member 2
// (they stay there although the placement would put them back on member
// 1), one named shard to member 3 over HTTP through member 1 (forwarded to
// member 3, which pulls it), and checks the errors: an unknown member, a
// bad shard list, a learner.
func TestShardedTransferLeader(t *testing.T) {
	c := newShardedCluster(t, 3, 4, nil)
	c.waitFor("leaders spread over the members", func() bool {
		return c.leadersOn(1, 0, 3) && c.leadersOn(2, 1) && c.leadersOn(3, 2)
	})
	ctx := context.Background()
	if err := c.srv[1].TransferLeader(ctx, 9); !errors.Is(err, ErrUnknownMember) {
		t.Errorf("transfer to unknown member 9: %v, want ErrUnknownMember", err)
	}
	for _, bad := range [][]int{{4}, {-1}, {1, 1}} {
		if err := c.srv[1].TransferShards(ctx, 2, bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("transfer of shards %v: %v, want ErrInvalid", bad, err)
		}
	}

	c.watchesCaughtUp(0, 3)
	if err := c.srv[1].TransferLeader(ctx, 2); err != nil {
		t.Fatalf("moving member 1's shards to member 2: %v", err)
	}
	c.waitFor("shards 0 and 3 led by member 2 on every member", func() bool { return c.leadersOn(2, 0, 3) })
	c.checkHeldThroughPlacement(2, 0, 3)
	if err := c.srv[1].TransferLeader(ctx, 3); err != nil {
		t.Errorf("member 1 leads nothing: moving its shards must succeed at once: %v", err)
	}

	// Over HTTP, naming a shard, through a member that neither leads it
	// nor receives it.
	c.watchesCaughtUp(0)
	rec := httptest.NewRecorder()
	c.srv[1].Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/leader",
		bytes.NewBufferString(`{"to": 3, "shards": [0]}`)))
	if rec.Code != http.StatusOK {
		t.Fatalf("POST /v1/leader naming shard 0: %d %s", rec.Code, rec.Body)
	}
	c.waitFor("shard 0 led by member 3 on every member", func() bool { return c.leadersOn(3, 0) })

	// A learner cannot lead: refused, not timed out.
	if _, err := c.srv[2].AddMember(ctx, newMember(t, 4)); err != nil {
		t.Fatal(err)
	}
	c.waitMembership([]uint64{1, 2, 3}, []uint64{4})
	if err := c.srv[2].TransferLeader(ctx, 4); !errors.Is(err, ErrInvalid) {
		t.Errorf("transfer to learner 4: %v, want ErrInvalid", err)
	}
	rec = httptest.NewRecorder()
	c.srv[2].Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/leader", bytes.NewBufferString(`{"to": 4}`)))
	if rec.Code != http.StatusBadRequest {
		t.Errorf("POST /v1/leader to a learner: %d %s, want 400", rec.Code, rec.Body)
	}
}

// checkHeldThroughPlacement checks that member id, which pulled shards by
// hand, does not ask to move them home through several placement passes
// (which run every two election timeouts, 1.2 s here, and would move them
// back to their preferred members, which are up). What is counted is
// member id's own transfer requests, not who leads: on a loaded machine
// an election may move a shard, which is not the placement. A shard lost
// and won back by id is placed as usual again (its hold ends with its
// leadership), so a window in which a shard's term changed proves nothing:
// the shards are pulled again and a new window starts.
func (c *shardedCluster) checkHeldThroughPlacement(id uint64, shards ...int) {
	c.t.Helper()
	s := c.srv[id]
	state := func() (moves uint64, terms []uint64) {
		st := s.Status()
		for _, i := range shards {
			moves += s.reps[i].moves.Load()
			terms = append(terms, st.Shards[i].Term)
		}
		return moves, terms
	}
	for try := 1; ; try++ {
		before, terms := state()
		quiet := true
		for end := time.Now().Add(4 * time.Second); quiet && time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
			n, now := state()
			switch {
			case !slices.Equal(now, terms):
				quiet = false
			case n != before:
				c.t.Fatalf("member %d's placement asked to move a shard moved there by hand (%d transfer requests), terms %v unchanged",
					id, n-before, terms)
			}
		}
		if quiet {
			return
		}
		if try == 5 {
			c.t.Fatalf("shards %v changed terms in each of %d windows: the placement could not be watched", shards, try)
		}
		c.t.Logf("shards %v changed terms during the window: pulled again", shards)
		c.watchesCaughtUp(shards...)
		if err := retryRequest(func() error { return s.TransferShards(context.Background(), id, shards) }); err != nil {
			c.t.Fatalf("member %d pulling shards %v again: %v", id, shards, err)
		}
	}
}

// TestShardedTransferLeaderWithHTTPS: with HTTPS, the member asked does
// not forward (the transferee's certificate need not chain to a CA it
// trusts): it answers 421 naming the request to make at the transferee,
// and that request, made there, moves the shards.
func TestShardedTransferLeaderWithHTTPS(t *testing.T) {
	ca := newTestCA(t, "raftkit test CA")
	c := newShardedCluster(t, 3, 4, func(cfg *Config) {
		cfg.HTTPTLS = &tls.Config{Certificates: []tls.Certificate{ca.leaf(t, int64(cfg.ID)+100)}}
	})
	c.waitFor("leaders spread over the members", func() bool { return c.leadersOn(1, 0, 3) })
	c.watchesCaughtUp(0, 3)
	rec := httptest.NewRecorder()
	c.srv[1].Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/leader", bytes.NewBufferString(`{"to": 2}`)))
	want := `{\"to\": 2, \"shards\": [0,3]}`
	if rec.Code != http.StatusMisdirectedRequest || !strings.Contains(rec.Body.String(), c.members[1].HTTPAddr) ||
		!strings.Contains(rec.Body.String(), want) {
		t.Fatalf("moving member 1's shards to member 2 with HTTPS: %d %s, want 421 naming %s and %s",
			rec.Code, rec.Body, c.members[1].HTTPAddr, want)
	}
	rec = httptest.NewRecorder()
	c.srv[2].Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/leader",
		bytes.NewBufferString(`{"to": 2, "shards": [0,3]}`)))
	if rec.Code != http.StatusOK {
		t.Fatalf("the request made at member 2: %d %s", rec.Code, rec.Body)
	}
	c.waitFor("shards 0 and 3 led by member 2 on every member", func() bool { return c.leadersOn(2, 0, 3) })
}

// TestForwardedPromoteTimeoutComesBack: a learner asked (forwarded) to
// promote itself gives up after its own request timeout and answers 504
// naming the shards done and pending; the member that forwarded the
// request waits long enough to pass that answer on, as a ShardsError
// wrapping ErrTimeout, rather than giving up first and telling the caller
// to ask the learner itself.
func TestForwardedPromoteTimeoutComesBack(t *testing.T) {
	const timeout = 300 * time.Millisecond
	learner := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(timeout) // the learner's own wait, as long as ours
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusGatewayTimeout)
		_, _ = w.Write([]byte(`{"error":"timed out","shards_done":[0],"shards_pending":[1]}`))
	}))
	defer learner.Close()
	// The grace past the learner's timeout (ElectionTicks x TickInterval, 2 s) is
	// generous: only its absence may fail this test, not a loaded machine.
	s := &ShardedServer{cfg: Config{RequestTimeout: timeout, ElectionTicks: 10, TickInterval: 200 * time.Millisecond}}
	_, err := s.forwardPromote(context.Background(), Member{ID: 4, HTTPAddr: strings.TrimPrefix(learner.URL, "http://")})
	var se *ShardsError
	if !errors.As(err, &se) || !errors.Is(err, ErrTimeout) {
		t.Fatalf("forwarded promote whose learner timed out: %v, want a ShardsError wrapping ErrTimeout", err)
	}
	if fmt.Sprint(se.Done, se.Pending) != "[0] [1]" {
		t.Fatalf("shards done %v, pending %v: want the learner's [0] and [1]", se.Done, se.Pending)
	}
}

// TestHoldSurvivesALossSeenLate: a member pulling a shard it led until
// just before (its leader watch still records itself as the leader) must
// keep the hold when its watch then notices that earlier loss; before
// holds were tied to a term, the watch let the hold go and the placement
// moved the shard home although it was moved by hand.
func TestHoldSurvivesALossSeenLate(t *testing.T) {
	c := newShardedCluster(t, 3, 4, nil)
	c.waitFor("leaders spread over the members", func() bool {
		return c.leadersOn(1, 0, 3) && c.leadersOn(2, 1) && c.leadersOn(3, 2)
	})
	s := c.srv[2] // shard 0 is led by member 1
	s.reps[0].setLead(s.cfg.ID)
	s.book.hold([]int{0}) // what pullShards does first
	s.watchLeaders(true, false)
	if !s.book.isHeld(0, 12345) {
		t.Fatal("the watch let the hold go for a loss from before the pull")
	}
}

// TestHoldIsForOneTerm checks the book's rules: a hold taken for a
// transfer holds in any term until settled, then only in the term of the
// leadership won, and expires once the shard moves to a later term.
func TestHoldIsForOneTerm(t *testing.T) {
	b := newMemberBook(2, nil)
	b.hold([]int{0})
	b.expire(0, 9)
	if !b.isHeld(0, 7) || !b.isHeld(0, 9) {
		t.Fatal("a transfer in progress must hold in any term, and not expire")
	}
	b.settle(0, 8)
	b.settle(1, 8) // not held: stays so
	switch {
	case !b.isHeld(0, 8):
		t.Fatal("not held in the term its transfer won")
	case b.isHeld(0, 10):
		t.Fatal("held in a later term: a leadership won back by election")
	case b.isHeld(1, 8):
		t.Fatal("settle held a shard nobody transferred")
	}
	b.expire(0, 8)
	if !b.isHeld(0, 8) {
		t.Fatal("expired in its own term")
	}
	b.expire(0, 9)
	if b.isHeld(0, 8) {
		t.Fatal("not expired after the shard moved to a later term")
	}
}
