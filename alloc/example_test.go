package alloc_test

import (
	"errors"
	"fmt"
	"slices"
	"sync"

	"bpbench/alloc"
)

// registerOnce registers the example's strategy once per test binary: a
// strategy's package registers it once, from init.
var registerOnce sync.Once

// A strategy of one's own joins the registry under a name; from then on
// New builds it, Strategies lists it, and every bpbench command, benchmark
// and the kit (alloctest.Run) take it by that name. This one delegates to
// the built-in mutex strategy; examples/mystrategy is a real one.
func ExampleRegister() {
	newDelegate := func(c alloc.Config) (alloc.Allocator, error) { return alloc.New("mutex", c) }
	registerOnce.Do(func() {
		// In the strategy's package: func init() { alloc.Register(...) }.
		if err := alloc.Register("example-delegate", newDelegate); err != nil {
			panic(err)
		}
	})
	fmt.Println("listed:", slices.Contains(alloc.Strategies(), "example-delegate"))

	a, err := alloc.New("example-delegate", alloc.X86(2))
	if err != nil {
		panic(err)
	}
	s, err := a.Reserve(alloc.Request{Task: 1, CPU: alloc.AnyCPU, Kind: alloc.Data})
	fmt.Println("reserved index:", s.Index(), err)
	fmt.Println("released:", a.Release(s))

	// A name is taken once.
	err = alloc.Register("example-delegate", newDelegate)
	fmt.Println("again:", errors.Is(err, alloc.ErrDuplicate))
	// Output:
	// listed: true
	// reserved index: 0 <nil>
	// released: <nil>
	// again: true
}
