package alloctest_test

import (
	"testing"

	"bpbench/alloc"
	"bpbench/alloc/alloctest"
)

// The kit runs from an ordinary test of the package that implements a
// strategy: every property of alloc's contract becomes a named subtest of
// that test (kunit, pools, invalid, release, differential, stress, ...),
// on machines from 1 CPU with 1 register to 256 CPUs.
func ExampleRun() {
	// In my_design_test.go, for a strategy registered as "my-design":
	testMyDesign := func(t *testing.T) {
		alloctest.Run(t, func(c alloc.Config) (alloc.Allocator, error) {
			return alloc.New("my-design", c)
		})
	}
	_ = testMyDesign // go test runs it as func TestMyDesign(t *testing.T)
}
