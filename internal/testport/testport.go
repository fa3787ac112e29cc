// Package testport hands tests loopback addresses that stay theirs for the
// life of the test process, across processes.
//
// A test that needs an address before it starts a server (a cluster's
// member list, a member restarted on its old address) cannot keep the
// listener that found a free port: it closes it and binds again later. In
// between, the port is up for grabs, and with ports from the kernel's
// ephemeral range the kernel itself hands it out as the local port of any
// outgoing connection, in this process or in another package's test binary
// running alongside ("bind: address already in use"). testport picks ports
// below the ephemeral range, where the kernel never picks, and claims each
// with an exclusive lock on a file named after it (released when the
// process exits), so two test processes never take the same one.
package testport

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
)

// The ports handed out: [low, high), below Linux's default ephemeral range
// (32768-60999) and above most services' well-known ports.
const (
	low  = 20000
	high = 32768
)

var claimed struct {
	sync.Mutex
	ports map[int]*os.File // held open: the lock lives as long as the file
}

// Addr returns "127.0.0.1:port" for a port that is free now and that no
// other caller of Addr, in this process or another, is handed while this
// process runs.
func Addr(t testing.TB) string {
	t.Helper()
	claimed.Lock()
	defer claimed.Unlock()
	if claimed.ports == nil {
		claimed.ports = map[int]*os.File{}
	}
	dir := filepath.Join(os.TempDir(), "raftkit-testports")
	if err := os.MkdirAll(dir, 0o777); err != nil {
		t.Fatalf("testport: %v", err)
	}
	for range 1000 {
		port := low + rand.IntN(high-low)
		if claimed.ports[port] != nil {
			continue
		}
		f, ok := claim(dir, port)
		if !ok {
			continue
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		ln, err := net.Listen("tcp", addr)
		if err != nil { // something outside the tests has it
			f.Close()
			continue
		}
		ln.Close()
		claimed.ports[port] = f
		return addr
	}
	t.Fatalf("testport: no free port in [%d, %d) after 1000 tries", low, high)
	return ""
}

// claim takes the lock file of port, or reports that another process
// holds it.
func claim(dir string, port int) (*os.File, bool) {
	f, err := os.OpenFile(filepath.Join(dir, fmt.Sprintf("%d.lock", port)), os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		return nil, false
	}
	if !tryLock(f) {
		f.Close()
		return nil, false
	}
	return f, true
}
