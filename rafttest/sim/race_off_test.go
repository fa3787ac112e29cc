//go:build !race

package sim

// raceEnabled is false in ordinary builds.
const raceEnabled = false
