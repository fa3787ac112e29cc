//go:build !linux

package main

// stopWithParentUnderGoRun does nothing where the kernel offers no parent
// death signal: stop "go run ... cluster" with Ctrl-C, or signal the
// raftkv process itself.
func stopWithParentUnderGoRun() {}
