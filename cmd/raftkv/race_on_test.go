//go:build race

package main

// raceEnabled: the race detector slows members several-fold, so tests
// give elections and requests more room.
const raceEnabled = true
