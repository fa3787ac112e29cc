//go:build !race

package multiraft

import "time"

// testTick is the tick of hosts with tickers in tests.
const testTick = 10 * time.Millisecond
