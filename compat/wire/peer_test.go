package wire

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/raftkit/raft/compat/internal/wireside"
)

// peer runs raftkit's raftpb for the whole test binary; see startPeer.
var (
	peer     *wireside.Remote
	peerErr  error
	peerOnce sync.Once
	peerDir  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if peer != nil {
		if err := peer.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "wirepeer:", err)
			code = 2
		}
	}
	if peerDir != "" {
		os.RemoveAll(peerDir)
	}
	os.Exit(code)
}

const peerPkg = "github.com/raftkit/raft/compat/internal/wirepeer"

// getPeer builds and starts the peer on first use. It runs inside a test
// on purpose: go test's result cache only notices files the test itself
// opens while tests run, and this binary does not link raftkit's raftpb,
// so startPeer opens every source file the peer is built from. Without
// that, a change to raftkit's raftpb would be answered from the cache.
func getPeer(t *testing.T) *wireside.Remote {
	t.Helper()
	peerOnce.Do(func() { peer, peerErr = startPeer() })
	if peerErr != nil {
		t.Fatal(peerErr)
	}
	return peer
}

func startPeer() (*wireside.Remote, error) {
	dir, err := os.MkdirTemp("", "wirepeer")
	if err != nil {
		return nil, err
	}
	peerDir = dir
	bin := filepath.Join(dir, "wirepeer")
	if out, err := exec.Command("go", "build", "-o", bin, peerPkg).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("building the raftkit side (%s): %v\n%s", peerPkg, err, out)
	}
	if err := touchSources(peerPkg); err != nil {
		return nil, err
	}
	return wireside.Start(bin)
}

// touchSources opens the Go files and go.mod files pkg is built from
// (outside the standard library), so that go test's cache depends on them.
func touchSources(pkg string) error {
	out, err := exec.Command("go", "list", "-deps", "-f",
		`{{if not .Standard}}{{range .GoFiles}}{{$.Dir}}/{{.}}{{"\n"}}{{end}}{{with .Module}}{{.GoMod}}{{"\n"}}{{end}}{{end}}`,
		pkg).Output()
	if err != nil {
		return fmt.Errorf("listing the sources of %s: %v", pkg, err)
	}
	for _, name := range strings.Fields(string(out)) {
		f, err := os.Open(name)
		if err != nil {
			return err
		}
		f.Close()
	}
	return nil
}

// both answers req with etcd's raftpb here and raftkit's in the peer. A
// broken request (not a library difference) fails the test at once.
func both(t *testing.T, req wireside.Request) (etcd, ours wireside.Response) {
	t.Helper()
	etcd = viaJSON(t, wireside.Handle(etcdSide{}, req))
	ours, err := getPeer(t).Call(req)
	if err != nil {
		t.Fatal(err)
	}
	if etcd.Fail != "" || ours.Fail != "" {
		t.Fatalf("harness failure on %s: etcd side %q, raftkit side %q", describeReq(req), etcd.Fail, ours.Fail)
	}
	return etcd, ours
}

// viaJSON sends the local response through the same encoding the peer's
// takes, so that the two compare byte for byte.
func viaJSON(t *testing.T, r wireside.Response) wireside.Response {
	t.Helper()
	data, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var out wireside.Response
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// same answers req on both sides and reports every field in which the
// answers differ. It returns etcd's answer for further checks.
func same(t *testing.T, req wireside.Request) wireside.Response {
	t.Helper()
	e, o := both(t, req)
	if diffs := responseDiffs(e, o); len(diffs) > 0 {
		t.Errorf("%s: answers differ:\n  %s", describeReq(req), strings.Join(diffs, "\n  "))
	}
	return e
}

func responseDiffs(e, o wireside.Response) []string {
	var diffs []string
	field := func(name string, ev, ov any, equal bool) {
		if !equal {
			diffs = append(diffs, fmt.Sprintf("%s: etcd %v, raftkit %v", name, ev, ov))
		}
	}
	str := func(p *string) string {
		if p == nil {
			return "<no error>"
		}
		return fmt.Sprintf("%q", *p)
	}
	field("error", str(e.Err), str(o.Err), str(e.Err) == str(o.Err))
	field("bytes", fmt.Sprintf("%x (nil=%t)", e.Bytes, e.Bytes == nil), fmt.Sprintf("%x (nil=%t)", o.Bytes, o.Bytes == nil),
		bytes.Equal(e.Bytes, o.Bytes) && (e.Bytes == nil) == (o.Bytes == nil))
	field("size", e.Size, o.Size, e.Size == o.Size)
	field("value", string(e.Tree), string(o.Tree), bytes.Equal(e.Tree, o.Tree))
	field("second value", string(e.Tree2), string(o.Tree2), bytes.Equal(e.Tree2, o.Tree2))
	field("encoding/json", string(e.JSON), string(o.JSON), bytes.Equal(e.JSON, o.JSON))
	field("string", fmt.Sprintf("%q", e.Str), fmt.Sprintf("%q", o.Str), e.Str == o.Str)
	field("number", e.Num, o.Num, e.Num == o.Num)
	field("bools", e.Bools, o.Bools, fmt.Sprint(e.Bools) == fmt.Sprint(o.Bools))
	return diffs
}

func describeReq(req wireside.Request) string {
	s := fmt.Sprintf("op=%s", req.Op)
	if req.Type != "" {
		s += " type=" + req.Type
	}
	if req.Tree != nil {
		s += " value=" + string(req.Tree)
	}
	if req.Tree2 != nil {
		s += " value2=" + string(req.Tree2)
	}
	if req.Bytes != nil {
		s += fmt.Sprintf(" bytes=%x", req.Bytes)
	}
	if req.Str != "" {
		s += fmt.Sprintf(" str=%q", req.Str)
	}
	if req.Num != 0 {
		s += fmt.Sprintf(" num=%d", req.Num)
	}
	return s
}
