//go:build race

package wal

// raceEnabled scales down tests whose cost is dominated by the raft core,
// which checks expensive invariants in race builds.
const raceEnabled = true
