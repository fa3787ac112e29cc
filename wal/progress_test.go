package wal

import "runtime"

// waitForProgress lets other goroutines run while a test waits for a
// condition they will make true; it never sleeps for a fixed time.
func waitForProgress() { runtime.Gosched() }
