package wire

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestBothInOneBinary runs a program that links etcd's raftpb and
// raftkit's. Both currently register the protobuf names raftpb.* (enums,
// messages and the file raft.proto) with github.com/golang/protobuf, whose
// RegisterEnum panics on a duplicate, so such a program dies at init. That
// is a known incompatibility, left to the owners of raftpb to decide on
// (renaming raftkit's proto package would fix it and change no wire byte),
// so the test skips when it sees exactly that panic and fails on anything
// else that is not a clean start.
func TestBothInOneBinary(t *testing.T) {
	const pkg = "github.com/raftkit/raft/compat/internal/linkboth"
	bin := filepath.Join(t.TempDir(), "linkboth")
	if out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput(); err != nil {
		t.Fatalf("building %s: %v\n%s", pkg, err, out)
	}
	if err := touchSources(pkg); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin).CombinedOutput()
	switch {
	case err == nil && strings.TrimSpace(string(out)) == "ok":
		return
	case strings.Contains(string(out), "proto: duplicate enum registered: raftpb."):
		t.Skipf("KNOWN INCOMPATIBILITY: etcd's and raftkit's raftpb cannot be linked into one binary:\n%s",
			firstLines(string(out), 2))
	default:
		t.Fatalf("program linking both raftpb packages: %v\n%s", err, out)
	}
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.Join(lines, "\n")
}
