// Package examples_test builds and runs every program under examples/ and
// checks what it prints, so that the programs the README points to keep
// compiling and keep working.
package examples_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// runExample builds ./name and runs it with a generous timeout (walnet has
// its own deadline of 2 minutes; the rest is room for a loaded machine),
// returning its standard output. Standard error is logged.
func runExample(t *testing.T, name string, env ...string) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatal("go command not found (the test runs it to build the examples):", err)
	}
	bin := filepath.Join(t.TempDir(), name)
	build := exec.Command(goBin, "build", "-o", bin, "./"+name)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./%s: %v\n%s", name, err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, bin)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.Env = append(os.Environ(), env...)
	err = cmd.Run()
	if stderr.Len() > 0 {
		t.Logf("%s stderr:\n%s", name, stderr.String())
	}
	if err != nil {
		t.Fatalf("%s: %v\nstdout:\n%s", name, err, stdout.String())
	}
	return stdout.String()
}

func TestInMemory(t *testing.T) {
	got := runExample(t, "inmemory")
	want := `leader: member 1
member 1 applied: x=1 y=2 x=3
member 2 applied: x=1 y=2 x=3
member 3 applied: x=1 y=2 x=3
`
	if got != want {
		t.Fatalf("inmemory printed:\n%s\nwant:\n%s", got, want)
	}
}

func TestWALNet(t *testing.T) {
	tmp := t.TempDir()
	got := runExample(t, "walnet", "TMPDIR="+tmp)
	want := `member 1 applied: x=1 y=2 x=3
member 2 applied: x=1 y=2 x=3
member 3 applied: x=1 y=2 x=3
stopped cleanly
`
	if got != want {
		t.Fatalf("walnet printed:\n%s\nwant:\n%s", got, want)
	}
	// Its data directories went to TMPDIR; a clean exit removes them.
	left, err := os.ReadDir(tmp)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) > 0 {
		t.Fatalf("walnet left %s behind in its temp dir", left[0].Name())
	}
}
