package main

import (
	"net"
	"strconv"
	"testing"

	"github.com/raftkit/raft/internal/testport"
)

// Free ports come from below the ephemeral range, distinct, and held until
// release: a member restarted on its port later does not find it taken as
// the local port of some outgoing connection.
func TestPortHolderPicksBelowTheEphemeralRange(t *testing.T) {
	var h portHolder
	defer h.release()
	seen := map[string]bool{}
	for i := 1; i <= 20; i++ {
		a, err := h.addr(0, i)
		if err != nil {
			t.Fatal(err)
		}
		_, p, _ := net.SplitHostPort(a)
		if n, _ := strconv.Atoi(p); n < pickLow || n >= pickHigh || seen[a] {
			t.Fatalf("pick %d: %s (seen before: %v), want a new port in [%d, %d)", i, a, seen[a], pickLow, pickHigh)
		}
		seen[a] = true
	}
	if a, _ := h.addr(9000, 3); a != "127.0.0.1:9002" {
		t.Errorf("with base port 9000, member 3's address is %s, want 127.0.0.1:9002", a)
	}
}

// The ports picked here and those internal/testport hands the kvservice
// tests (claimed with lock files this picker does not look at) come from
// ranges apart: the two test binaries run at once under "go test ./...",
// and each stops and restarts members on their ports.
func TestPortHolderRangeApartFromTestport(t *testing.T) {
	for i := 0; i < 20; i++ {
		_, p, _ := net.SplitHostPort(testport.Addr(t))
		if n, _ := strconv.Atoi(p); n >= pickLow && n < pickHigh {
			t.Fatalf("testport handed out port %d, in raftkv's range [%d, %d)", n, pickLow, pickHigh)
		}
	}
}
