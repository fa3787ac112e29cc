package shared

import "runtime"

// waitForProgress lets other goroutines run while a test waits for a
// state it observes (never a sleep standing in for ordering).
func waitForProgress() { runtime.Gosched() }
