//go:build race

package hwregs

// perfRace is true under -race, whose instrumentation touches watched
// memory itself, so read/write watchpoints see more accesses than the Go
// code makes.
const perfRace = true
