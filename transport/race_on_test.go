//go:build race

package transport

// raceEnabled: the race detector allocates, so allocation counts are not
// checked in race builds.
const raceEnabled = true
