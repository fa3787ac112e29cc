package wal

import (
	"runtime"
	"testing"
	"time"
)

// waitDeadline bounds how long waitUntil waits: far longer than any
// condition takes on a loaded machine, so reaching it means a stuck
// goroutine, not a slow one.
const waitDeadline = time.Minute

// waitUntil lets other goroutines run until cond holds; it never sleeps for
// a fixed time. A condition that does not hold within waitDeadline fails the
// test (naming what), so that a stuck goroutine fails it instead of hanging
// it until the whole test binary times out.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitDeadline)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("still waiting for %s after %v", what, waitDeadline)
		}
		runtime.Gosched()
	}
}
