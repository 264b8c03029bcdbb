//go:build race

package main

// raceEnabled: the test binary runs under the race detector, so the
// envdctl it builds for the functional tests does too.
const raceEnabled = true
