package alloc_test

import (
	"testing"

	"bpbench/alloc"
	"bpbench/alloc/alloctest"
)

// The shared rules, the differential test and the stress test of every
// strategy live in bpbench/alloc/alloctest; these tests run them on every
// registered strategy and on the ptrace/perf Exclusion decorator around
// mutex, grouped so that `go test -run Stress` (or KUnit, Rules,
// Differential, Concurrent, Allocs) picks one group.

func TestKUnit(t *testing.T) { kit(t, "kunit") }

func TestRules(t *testing.T) {
	kit(t, "pools", "invalid", "release", "fragmented_index", "regression")
}

func TestDifferential(t *testing.T) { kit(t, "differential") }

func TestStress(t *testing.T) { kit(t, "stress") }

func TestConcurrent(t *testing.T) { kit(t, "concurrent_release", "all_cpu_index") }

func TestAllocs(t *testing.T) { kit(t, "allocs") }

// kit runs the named kit subtests on every strategy.
func kit(t *testing.T, subtests ...string) {
	for _, s := range alloc.Strategies() {
		f := func(c alloc.Config) (alloc.Allocator, error) { return alloc.New(s, c) }
		t.Run("strategy="+s, func(t *testing.T) {
			alloctest.RunOnly(t, f, subtests...)
		})
	}
	t.Run("strategy=exclusion(mutex)", func(t *testing.T) {
		alloctest.RunOnly(t, func(c alloc.Config) (alloc.Allocator, error) {
			inner, err := alloc.New("mutex", c)
			if err != nil {
				return nil, err
			}
			return alloc.NewExclusion(inner), nil
		}, subtests...)
	})
}
