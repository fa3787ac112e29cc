package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/raftkit/raft/kvservice"
)

// cuttingProxy forwards TCP connections to a member's raft listener and
// cuts the first cutSnapshots snapshot streams short: after the handshake
// and a few bytes of the snapshot, it closes both sides, so that the
// receiver sees a truncated stream.
type cuttingProxy struct {
	ln           net.Listener
	target       string
	cutSnapshots int32
	cut          atomic.Int32
	wg           sync.WaitGroup
	mu           sync.Mutex
	conns        []net.Conn // every connection, closed at cleanup
}

func (p *cuttingProxy) track(c net.Conn) {
	p.mu.Lock()
	p.conns = append(p.conns, c)
	p.mu.Unlock()
}

func (p *cuttingProxy) close() {
	p.ln.Close()
	p.mu.Lock()
	for _, c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// The handshake's stream kind is byte 6 (after magic and version), and 2
// means a snapshot stream; see package transport.
const (
	handshakeBytes   = 32
	snapshotKindByte = 2
)

func newCuttingProxy(t *testing.T, target string, cutSnapshots int32) *cuttingProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cuttingProxy{ln: ln, target: target, cutSnapshots: cutSnapshots}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

func (p *cuttingProxy) accept() {
	defer p.wg.Done()
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.serve(in)
		}()
	}
}

func (p *cuttingProxy) serve(in net.Conn) {
	defer in.Close()
	p.track(in)
	out, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	defer out.Close()
	p.track(out)
	hello := make([]byte, handshakeBytes)
	if _, err := io.ReadFull(in, hello); err != nil {
		return
	}
	if _, err := out.Write(hello); err != nil {
		return
	}
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(in, out); done <- struct{}{} }()
	if hello[6] == snapshotKindByte && p.cut.Load() < p.cutSnapshots {
		// Pass the snapshot header and a little data, then hang up.
		_, _ = io.CopyN(out, in, 200)
		p.cut.Add(1)
		return
	}
	go func() { _, _ = io.Copy(out, in); done <- struct{}{} }()
	<-done
}

// TestMembership adds a fourth member at runtime, whose first snapshot
// streams are cut short on the way; it still receives everything. Then
// leadership moves to it, and another member is removed and stops.
func TestMembership(t *testing.T) {
	c, lead := newTestCluster(t, 3, "--snapshot-count", "40", "--catch-up-entries", "5")
	ctx := context.Background()
	keys := map[string]string{}
	for i := 0; i < 100; i++ {
		k, v := fmt.Sprintf("m/%03d", i), fmt.Sprintf("v%d", i)
		c.mustPut(t, c.ids()[i%3], k, v)
		keys[k] = v
	}
	http4 := joinMember4ThroughCuttingProxy(t, c, lead)
	for k, v := range keys {
		got, ok, err := c.client.Get(ctx, http4, k, true)
		if err != nil || !ok || got != v {
			t.Fatalf("new member: %s = %q (found %v, %v), want %q", k, got, ok, err, v)
		}
	}
	// Member 4 joined as a learner; the leader promotes it once caught up.
	var st kvservice.Status
	var err error
	waitFor(t, 30*time.Second, "member 4 to be promoted to voter", func() bool {
		st, err = c.client.Status(ctx, http4)
		return err == nil && len(st.Voters) == 4
	})
	if len(st.Members) != 4 {
		t.Fatalf("new member's status: %+v %v", st, err)
	}
	c.mustPut(t, 4, "written-via-4", "yes")

	// Leadership moves to the new member.
	if err := c.client.TransferLeader(ctx, c.addr(1), 4); err != nil {
		t.Fatal(err)
	}
	if got := c.mustLeader(t, 1, 2, 3, 4); got != 4 {
		t.Fatalf("leader is %d after the transfer to 4", got)
	}
	checkRemoveOtherMember(t, c, http4)
}

// joinMember4ThroughCuttingProxy adds member 4, whose peer address is a
// proxy that cuts its first two snapshot streams, starts it, waits for it
// to catch up with lead and checks it refused (and counted) the truncated
// streams before installing a whole one. It returns member 4's HTTP address.
func joinMember4ThroughCuttingProxy(t *testing.T, c *procCluster, lead uint64) string {
	t.Helper()
	ctx := context.Background()
	// Member 4 listens on its own address; the cluster reaches it
	// through the proxy.
	// The ports stay held until the proxy has its own, so all three differ.
	var held portHolder
	real4, err := held.addr(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	http4, err := held.addr(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	proxy := newCuttingProxy(t, real4, 2)
	held.release()
	join := kvservice.FormatMembers(c.layout.Members)
	mustChange(t, "adding member 4", http.StatusConflict, func(ctx context.Context) error {
		return c.client.AddMember(ctx, c.addr(1), kvservice.Member{ID: 4, PeerAddr: proxy.ln.Addr().String(), HTTPAddr: http4})
	})
	c.layout.Members = append(c.layout.Members, kvservice.Member{ID: 4, PeerAddr: real4, HTTPAddr: http4})
	if err := c.startWith(4, "--join", join); err != nil {
		t.Fatal(err)
	}
	c.mustCatchUp(t, 4, lead)
	if proxy.cut.Load() < 2 {
		t.Fatalf("only %d snapshot streams were cut", proxy.cut.Load())
	}
	if n := c.metric(t, 4, "raftkv_snapshots_installed_total"); n < 1 {
		t.Fatalf("member 4 installed %v snapshots", n)
	}
	metrics, _ := httpGet(ctx, "http://"+http4+"/metrics")
	if !strings.Contains(metrics, "raftkv_transport_snapshots_rejected_total{peer=") || strings.Contains(metrics, fmt.Sprintf("raftkv_transport_snapshots_rejected_total{peer=\"%d\"} 0", lead)) {
		t.Fatalf("member 4 does not count the truncated snapshots it refused:\n%s", metrics)
	}
	return http4
}

// checkRemoveOtherMember asks member 4 (at http4) to remove member 3 and
// checks that 3 exits and stops serving while the other three keep
// committing as the only voters.
func checkRemoveOtherMember(t *testing.T, c *procCluster, http4 string) {
	t.Helper()
	ctx := context.Background()
	// Remove a member other than the one we ask: it stops serving.
	victim := uint64(3)
	mustChange(t, "removing member 3", http.StatusNotFound, func(ctx context.Context) error { return c.client.RemoveMember(ctx, http4, victim) })
	waitFor(t, 15*time.Second, "the removed member to exit", func() bool { return !c.running(victim) })
	if _, _, err := c.client.Get(ctx, c.addr(victim), "written-via-4", true); err == nil {
		t.Fatal("the removed member still serves")
	}
	c.mustPut(t, 1, "after-removal", "ok")
	for _, id := range []uint64{1, 2, 4} {
		if v, ok := c.mustGet(t, id, "after-removal"); !ok || v != "ok" {
			t.Fatalf("member %d after removal: %q %v", id, v, ok)
		}
	}
	st, _ := c.client.Status(ctx, c.addr(1))
	if len(st.Voters) != 3 {
		t.Fatalf("voters after removal: %v", st.Voters)
	}
}

// TestModelCatchesViolations makes sure the porcupine model is not
// vacuous: a read that misses an acknowledged write is illegal.
func TestModelCatchesViolations(t *testing.T) {
	m := kvModel.ToModel()
	ok := []porcupine.Operation{
		{ClientId: 0, Input: kvInput{op: "put", key: "a", value: "1"}, Call: 0, Output: kvOutput{}, Return: 10},
		{ClientId: 1, Input: kvInput{op: "get", key: "a"}, Call: 20, Output: kvOutput{value: "1", found: true}, Return: 30},
	}
	if !porcupine.CheckOperations(m, ok) {
		t.Fatal("a legal history is refused")
	}
	stale := append([]porcupine.Operation(nil), ok...)
	stale[1].Output = kvOutput{}
	if porcupine.CheckOperations(m, stale) {
		t.Fatal("a stale read is accepted")
	}
	// An unknown-outcome CAS may or may not have happened.
	exp := "1"
	maybe := append(append([]porcupine.Operation(nil), ok...),
		porcupine.Operation{ClientId: 2, Input: kvInput{op: "cas", key: "a", value: "2", expect: &exp}, Call: 40, Output: kvOutput{unknown: true}, Return: 1 << 62},
		porcupine.Operation{ClientId: 1, Input: kvInput{op: "get", key: "a"}, Call: 50, Output: kvOutput{value: "2", found: true}, Return: 60},
		porcupine.Operation{ClientId: 1, Input: kvInput{op: "get", key: "a"}, Call: 70, Output: kvOutput{value: "1", found: true}, Return: 80},
	)
	if porcupine.CheckOperations(m, maybe) {
		t.Fatal("a value going back after being read is accepted")
	}
	if !porcupine.CheckOperations(m, maybe[:4]) {
		t.Fatal("an unknown-outcome CAS that happened is refused")
	}
}
