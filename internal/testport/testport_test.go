package testport

import (
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// Addresses are distinct, bindable, and outside the ephemeral range.
func TestAddrsAreDistinctAndBindable(t *testing.T) {
	seen := map[string]bool{}
	for range 50 {
		a := Addr(t)
		if seen[a] {
			t.Fatalf("%s handed out twice", a)
		}
		seen[a] = true
		_, p, _ := net.SplitHostPort(a)
		if n, _ := strconv.Atoi(p); n < low || n >= high {
			t.Fatalf("%s is outside [%d, %d)", a, low, high)
		}
		ln, err := net.Listen("tcp", a)
		if err != nil {
			t.Fatalf("binding %s: %v", a, err)
		}
		ln.Close()
	}
}

// A port claimed by another process cannot be claimed here: a child
// process (this test binary again) claims a port and holds it while this
// process tries to lock the same port's file.
func TestClaimIsExclusiveAcrossProcesses(t *testing.T) {
	if os.Getenv("TESTPORT_CHILD") == "1" {
		a := Addr(t)
		os.Stdout.WriteString("PORT " + a + "\n")
		os.Stdin.Read(make([]byte, 1)) // hold the claim until the parent is done
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run", "^TestClaimIsExclusiveAcrossProcesses$")
	cmd.Env = append(os.Environ(), "TESTPORT_CHILD=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { stdin.Close(); cmd.Wait() }()
	buf := make([]byte, 0, 256)
	for !strings.Contains(string(buf), "\n") {
		b := make([]byte, 64)
		n, err := out.Read(b)
		if err != nil {
			t.Fatalf("reading the child's port: %v (%q)", err, buf)
		}
		buf = append(buf, b[:n]...)
	}
	line := string(buf)
	_, port, _ := net.SplitHostPort(strings.TrimSpace(line[strings.Index(line, "PORT ")+5:]))
	p, _ := strconv.Atoi(port)
	dir := os.TempDir() + "/raftkit-testports"
	if f, ok := claim(dir, p); ok {
		f.Close()
		t.Fatalf("port %d claimed by the child process was claimed here too", p)
	}
}
