package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/raftkit/raft/kvservice"
)

// TestServeRefusesExposureWithoutSecurity checks raftkv serve's secure
// default: a member listening beyond loopback without TLS and tokens does
// not start unless --insecure says so; token files are checked.
func TestServeRefusesExposureWithoutSecurity(t *testing.T) {
	dir := t.TempDir()
	args := func(peer string, extra ...string) []string {
		return append([]string{"--id", "1", "--cluster-id", "ab", "--dir", filepath.Join(dir, "d"),
			"--peer-addr", peer, "--http-addr", "127.0.0.1:0",
			"--initial-cluster", "1=127.0.0.1:1/127.0.0.1:2"}, extra...)
	}
	err := runServe(args("0.0.0.0:0"))
	if !errors.Is(err, kvservice.ErrInsecure) || !strings.Contains(err.Error(), "--insecure") {
		t.Fatalf("serve on 0.0.0.0 without TLS: %v", err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte(" \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := runServe(args("127.0.0.1:0", "--token-file", empty)); err == nil || !strings.Contains(err.Error(), "is empty") {
		t.Fatalf("empty token file: %v", err)
	}
	if err := runServe(args("127.0.0.1:0", "--peer-cert", filepath.Join(dir, "missing.pem"))); err == nil ||
		!strings.Contains(err.Error(), "--peer-cert") {
		t.Fatalf("missing certificate: %v", err)
	}
}
