//go:build race

package main

// raceEnabled builds the binary under test with the race detector too, so
// that the real processes the tests start are checked as well.
const raceEnabled = true
