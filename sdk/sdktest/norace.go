//go:build !race

package sdktest

// raceEnabled is true when this test binary has the race detector on.
const raceEnabled = false
