//go:build race

package alloctest

// raceEnabled scales the stress test down under the race detector, which
// slows these atomics-heavy paths about tenfold.
const raceEnabled = true
