//go:build !race

package multiraft

import "time"

// testTick is the tick of hosts with tickers in tests.
const testTick = 10 * time.Millisecond

// simSeeds is the number of seeds TestSimMultiGroup runs.
const simSeeds = 12

// raceEnabled reports a -race build, whose sync.Pool drops a share of
// what is put back.
const raceEnabled = false
