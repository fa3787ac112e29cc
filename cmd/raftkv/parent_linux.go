package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// stopWithParentUnderGoRun makes the kernel send this process SIGTERM when
// its parent dies, if that parent is "go run": go run does not pass
// SIGTERM on to the program it built, it just exits, and the cluster (with
// its members) would run on, orphaned. The cluster's own SIGTERM handling
// then stops the members. A binary started any other way (say under nohup)
// is left alone: outliving its shell may be the point.
func stopWithParentUnderGoRun() {
	exe, err := os.Executable()
	if err != nil || !strings.Contains(filepath.ToSlash(exe), "/go-build") {
		return
	}
	const prSetPdeathsig = 1
	_, _, _ = syscall.RawSyscall(syscall.SYS_PRCTL, prSetPdeathsig, uintptr(syscall.SIGTERM), 0)
	if os.Getppid() == 1 { // the parent died before the call took effect
		_ = syscall.Kill(os.Getpid(), syscall.SIGTERM)
	}
}
