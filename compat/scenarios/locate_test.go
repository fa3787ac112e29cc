package scenarios

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// The release whose scenario files raftkit must reproduce; compat's go.mod
// requires exactly this version.
const (
	etcdModule  = "go.etcd.io/raft/v3"
	etcdVersion = "v3.6.0"
)

var (
	etcdDirOnce sync.Once
	etcdDirPath string
	etcdDirErr  error
)

// etcdDir returns the directory of etcd/raft v3.6.0's module, or fails t
// saying how to make it available.
func etcdDir(t *testing.T) string {
	t.Helper()
	etcdDirOnce.Do(func() { etcdDirPath, etcdDirErr = locateEtcd() })
	if etcdDirErr != nil {
		t.Fatalf("cannot find %s@%s: %v\n"+
			"(from compat/, `go mod download %s@%s` fetches it into the module cache)",
			etcdModule, etcdVersion, etcdDirErr, etcdModule, etcdVersion)
	}
	return etcdDirPath
}

// locateEtcd asks the go command where the module the compat module builds
// against lives. If that answer is unavailable (no go command, or a module
// the listing knows but has not got a directory for), it falls back to
// where the module cache keeps that version; but when go.mod itself names
// another etcd, that is an error to fix, not something to work around.
// Either way the directory must hold the scenario files, so that a wrong
// guess cannot pass as zero files.
func locateEtcd() (string, error) {
	dir, listErr := listModuleDir()
	var pinErr pinError
	if errors.As(listErr, &pinErr) {
		return "", listErr
	}
	if listErr == nil {
		if listErr = checkScenarioDirs(dir); listErr == nil {
			return dir, nil
		}
	}
	cached, cacheErr := moduleCacheDir()
	if cacheErr == nil {
		cacheErr = checkScenarioDirs(cached)
	}
	if cacheErr != nil {
		return "", fmt.Errorf("%v; and in the module cache: %v", listErr, cacheErr)
	}
	return cached, nil
}

// checkScenarioDirs makes sure dir holds the directories the tests read.
func checkScenarioDirs(dir string) error {
	for _, sub := range []string{"quorum/testdata", "confchange/testdata", "testdata"} {
		if fi, err := os.Stat(filepath.Join(dir, filepath.FromSlash(sub))); err != nil || !fi.IsDir() {
			return fmt.Errorf("%s has no directory %s", dir, sub)
		}
	}
	return nil
}

// listModuleDir runs `go list -m -json` on etcd/raft from the test's
// directory, which lies inside the compat module.
func listModuleDir() (string, error) {
	cmd := exec.Command("go", "list", "-m", "-json", etcdModule)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		if msg := strings.TrimSpace(stderr.String()); msg != "" {
			err = fmt.Errorf("%v: %s", err, msg)
		}
		return "", fmt.Errorf("go list -m %s: %v", etcdModule, err)
	}
	var mod struct {
		Version string
		Dir     string
		Replace *struct{ Path, Version string }
	}
	if err := json.Unmarshal(out, &mod); err != nil {
		return "", fmt.Errorf("go list -m %s: decoding %q: %v", etcdModule, out, err)
	}
	// A different version or a replacement would make these checks about
	// some other etcd than the one raftkit promises to match.
	switch {
	case mod.Replace != nil:
		return "", pinErrorf("compat's go.mod replaces %s with %s %s; these checks are about %s",
			etcdModule, mod.Replace.Path, mod.Replace.Version, etcdVersion)
	case mod.Version != etcdVersion:
		return "", pinErrorf("compat's go.mod requires %s %s, not %s: update etcdVersion together with it",
			etcdModule, mod.Version, etcdVersion)
	case mod.Dir == "":
		return "", fmt.Errorf("go list -m %s: the module is not in the module cache", etcdModule)
	}
	return mod.Dir, nil
}

// moduleCacheDir is where `go mod download` puts the pinned version. The
// module path has no upper-case letters, so it needs no case escaping.
func moduleCacheDir() (string, error) {
	cache := os.Getenv("GOMODCACHE")
	if cache == "" {
		out, err := exec.Command("go", "env", "GOMODCACHE").Output()
		if err != nil {
			return "", fmt.Errorf("go env GOMODCACHE: %v", err)
		}
		cache = strings.TrimSpace(string(out))
	}
	if cache == "" {
		return "", fmt.Errorf("no module cache: GOMODCACHE is empty")
	}
	return filepath.Join(cache, filepath.FromSlash(etcdModule)+"@"+etcdVersion), nil
}

// pinError says that compat's go.mod does not select etcd/raft v3.6.0.
type pinError struct{ msg string }

func (e pinError) Error() string { return e.msg }

func pinErrorf(format string, args ...any) error {
	return pinError{fmt.Sprintf(format, args...)}
}
