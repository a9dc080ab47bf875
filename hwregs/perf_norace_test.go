//go:build !race

package hwregs

// perfRace is true under -race (see perf_race_test.go).
const perfRace = false
