//go:build race

package sim

// raceEnabled is true in -race builds, where the simulation runs about ten
// times slower; the default seed count scales down accordingly.
const raceEnabled = true
