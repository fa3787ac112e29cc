//go:build !race

package walstore

// raceEnabled says the tests run under the race detector, where sync.Pool
// keeps little and allocation counts say nothing.
const raceEnabled = false
