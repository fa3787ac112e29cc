//go:build race

package multiraft

import "time"

// testTick is the tick of hosts with tickers in tests: slower under the
// race detector, which makes every tick of hundreds of groups ~10x dearer.
const testTick = 50 * time.Millisecond

// simSeeds is the number of seeds TestSimMultiGroup runs: fewer under the race detector (about 10x slower).
const simSeeds = 3

// raceEnabled reports a -race build, whose sync.Pool drops a share of
// what is put back.
const raceEnabled = true
