package mystrategy_test

import (
	"testing"

	"bpbench/alloc"
	"bpbench/alloc/alloctest"
	"bpbench/examples/mystrategy"
)

// TestConformance checks the example against alloc's whole contract,
// through the registry as any bpbench command would build it.
func TestConformance(t *testing.T) {
	alloctest.Run(t, func(c alloc.Config) (alloc.Allocator, error) {
		return alloc.New(mystrategy.Name, c)
	})
}
