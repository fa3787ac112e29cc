package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/raftkit/raft"
	"github.com/raftkit/raft/raftpb"
	"github.com/raftkit/raft/transport"
)

func httpGet(ctx context.Context, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// TestAPI runs one cluster through reads after writes, every kind of bad
// request, and a peer from another cluster; after the bad input the data
// is intact and the cluster still serves.
func TestAPI(t *testing.T) {
	c, lead := newTestCluster(t, 3)
	t.Run("ReadsSeeWrites", func(t *testing.T) { checkReadsSeeWrites(t, c) })
	t.Run("BadRequests", func(t *testing.T) { checkBadRequests(t, c) })
	t.Run("PeerFromAnotherCluster", func(t *testing.T) { checkPeerFromAnotherCluster(t, c, lead) })
	t.Run("Metrics", func(t *testing.T) { checkAPIMetrics(t, c, lead) })
}

// checkReadsSeeWrites checks that a write through any member is read
// linearizably through every member, and that CAS and delete behave through
// any member.
func checkReadsSeeWrites(t *testing.T, c *procCluster) {
	for _, w := range c.ids() {
		for _, r := range c.ids() {
			k, v := fmt.Sprintf("ryw/%d-%d", w, r), fmt.Sprintf("v%d%d", w, r)
			c.mustPut(t, w, k, v)
			if got, ok := c.mustGet(t, r, k); !ok || got != v {
				t.Fatalf("write via %d, linearizable read via %d: %q %v", w, r, got, ok)
			}
		}
	}
	if c.mustCAS(t, 2, "ryw/1-1", strPtr("wrong"), "x") {
		t.Fatal("CAS with a wrong expectation swapped")
	}
	if !c.mustCAS(t, 3, "ryw/1-1", strPtr("v11"), "cas") {
		t.Fatal("CAS with the right expectation did not swap")
	}
	if !c.mustCAS(t, 1, "ryw/new", nil, "created") {
		t.Fatal("CAS on an absent key did not swap")
	}
	c.mustDelete(t, 2, "ryw/new")
	if _, found := c.mustGet(t, 3, "ryw/new"); found {
		t.Fatal("read after delete found the key")
	}
}

// checkBadRequests sends malformed and refused requests to member 1 and
// checks each gets its status and message, writes nothing and is counted.
func checkBadRequests(t *testing.T, c *procCluster) {
	c.mustPut(t, 1, "keep", "safe")
	huge := `{"value":"` + strings.Repeat("x", 2<<20) + `"}`
	cases := []struct {
		method, path, body string
		code               int
		msg                string
	}{
		{"PUT", "/v1/kv/k", `{"value":`, 400, "bad JSON"},
		{"PUT", "/v1/kv/k", `not json`, 400, "bad JSON"},
		{"PUT", "/v1/kv/k", ``, 400, "empty body"},
		{"PUT", "/v1/kv/k", `{}`, 400, `missing "value"`},
		{"PUT", "/v1/kv/k", `{"value":"a","ttl":3}`, 400, "unknown field"},
		{"PUT", "/v1/kv/k", `{"value":"a"} {"value":"b"}`, 400, "trailing data"},
		{"PUT", "/v1/kv/k", `{"value":7}`, 400, "bad JSON"},
		{"PUT", "/v1/kv/", `{"value":"a"}`, 400, "missing key"},
		{"GET", "/v1/kv/", ``, 400, "missing key"},
		{"PUT", "/v1/kv/k", huge, 413, "larger than"},
		{"PATCH", "/v1/kv/k", `{"value":"a"}`, 405, "not allowed"},
		{"POST", "/v1/cas/k", `{"value":"a"}`, 400, `needs "expect"`},
		{"POST", "/v1/cas/k", `{"expect":3,"value":"a"}`, 400, `"expect" must be`},
		{"GET", "/v1/cas/k", ``, 405, "use POST"},
		{"DELETE", "/v1/members/99", ``, 404, "unknown member"},
		{"DELETE", "/v1/members/zero", ``, 400, "positive integer"},
		{"POST", "/v1/members", `{"id":1,"peer_addr":"127.0.0.1:1","http_addr":"127.0.0.1:2"}`, 409, "already exists"},
		{"POST", "/v1/members", `{"id":7}`, 400, "required"},
		{"POST", "/v1/members", `{"id":0,"peer_addr":"a:1","http_addr":"a:2"}`, 400, "must not be zero"},
		{"POST", "/v1/leader", `{"to":99}`, 404, "unknown member"},
		{"POST", "/v1/leader", `{}`, 400, `missing "to"`},
	}
	for _, tc := range cases {
		req, _ := http.NewRequest(tc.method, "http://"+c.addr(1)+tc.path, strings.NewReader(tc.body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", tc.method, tc.path, err)
		}
		var e struct{ Error string }
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		_ = json.Unmarshal(b, &e)
		if resp.StatusCode != tc.code || !strings.Contains(e.Error, tc.msg) {
			t.Errorf("%s %s %.40q: got %d %q, want %d with %q", tc.method, tc.path, tc.body, resp.StatusCode, e.Error, tc.code, tc.msg)
		}
	}
	if v, ok := c.mustGet(t, 2, "keep"); !ok || v != "safe" {
		t.Fatalf("after bad requests: %q %v", v, ok)
	}
	if _, found := c.mustGet(t, 3, "k"); found {
		t.Fatal("a refused request wrote a value")
	}
	if c.metric(t, 1, "raftkv_http_bad_requests_total") < float64(len(cases)) {
		t.Fatal("bad requests not counted")
	}
}

// checkPeerFromAnotherCluster dials member 2 as a peer of another cluster
// with a far higher term and checks the handshake is refused, logged and
// counted, and raft never sees the message. It relies on "keep" written by
// checkBadRequests.
func checkPeerFromAnotherCluster(t *testing.T, c *procCluster, lead uint64) {
	ctx := context.Background()
	st, err := c.client.Status(ctx, c.addr(lead))
	if err != nil {
		t.Fatal(err)
	}
	// It claims to be member 1 of another cluster and sends a
	// heartbeat from a far higher term: if it got through, the
	// cluster would depose its leader.
	rogue, err := transport.New(transport.Config{ClusterID: 0xbad, ID: 1, ListenAddr: "127.0.0.1:0", Raft: nopRaft{}})
	if err != nil {
		t.Fatal(err)
	}
	defer rogue.Close()
	target := uint64(2)
	if err := rogue.AddPeer(target, c.member(target).PeerAddr); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the handshake to be refused", func() bool {
		rogue.Send([]raftpb.Message{{Type: raftpb.MsgHeartbeat, From: 1, To: target, Term: st.Term + 1000}})
		return c.metric(t, target, "raftkv_transport_handshakes_refused_total") >= 1 &&
			rogue.Stats().Peers[target].DialFailures >= 1
	})
	log, _ := os.ReadFile(filepath.Join(c.dir, fmt.Sprintf("node%d.log", target)))
	if !bytes.Contains(log, []byte("cluster ID mismatch")) {
		t.Error("member's log does not say why it refused the peer")
	}
	after, err := c.client.Status(ctx, c.addr(target))
	if err != nil {
		t.Fatal(err)
	}
	if after.Term >= st.Term+1000 {
		t.Fatalf("the rogue heartbeat reached raft: term %d", after.Term)
	}
	c.mustPut(t, target, "after-rogue", "ok")
	if v, ok := c.mustGet(t, lead, "keep"); !ok || v != "safe" {
		t.Fatalf("after the rogue peer: %q %v", v, ok)
	}
}

// checkAPIMetrics checks that the leader exports the core metric families.
func checkAPIMetrics(t *testing.T, c *procCluster, lead uint64) {
	ctx := context.Background()
	text, err := httpGet(ctx, "http://"+c.addr(lead)+"/metrics")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"# TYPE raftkv_proposals_total counter",
		"# TYPE raftkv_wal_fsync_duration_seconds histogram",
		`raftkv_wal_fsync_duration_seconds_bucket{le="+Inf"}`,
		"raftkv_leader_changes_total",
		"raftkv_entries_committed_total",
		"raftkv_transport_send_queue_drops_total{peer=",
		"raftkv_is_leader 1",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if c.metric(t, lead, "raftkv_proposals_applied_total") < 1 {
		t.Error("no applied proposals counted on the leader")
	}
}

func strPtr(s string) *string { return &s }

type nopRaft struct{}

func (nopRaft) Process(context.Context, raftpb.Message) error { return nil }
func (nopRaft) ReportUnreachable(uint64)                      {}
func (nopRaft) ReportSnapshot(uint64, raft.SnapshotStatus)    {}
