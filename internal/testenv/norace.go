//go:build !race

package testenv

// RaceEnabled says the race detector is on: it allocates on its own, so
// tests that count a loop's allocations skip under it (SkipUnderRace).
const RaceEnabled = false
