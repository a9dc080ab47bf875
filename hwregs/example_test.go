package hwregs_test

import (
	"fmt"

	"bpbench/alloc"
	"bpbench/hwregs"
)

// A Writer puts breakpoints into debug registers: an allocator decides
// which register a breakpoint gets, a backend holds the registers (here
// the simulated ones; StartPtrace and OpenPerf give real ones), and the
// register-writing policy decides which registers each change writes.
// Moving a breakpoint writes one address register under WriteChanged
// (GDB's policy) and all six registers under WriteAll (Delve's).
func ExampleNewWriter() {
	req := alloc.Request{Task: 1, CPU: alloc.AnyCPU, Kind: alloc.Data}
	for _, wp := range []hwregs.WritePolicy{hwregs.WriteChanged, hwregs.WriteAll} {
		a, err := alloc.New("mutex", alloc.X86(2))
		if err != nil {
			panic(err)
		}
		sim := hwregs.NewSim()
		w := hwregs.NewWriter(a, sim, wp)
		bp, err := w.Register(req, hwregs.Attr{Addr: 0x1000, Len: 8, Type: hwregs.Write})
		if err != nil {
			panic(err)
		}
		before := sim.Writes()
		if err := w.Modify(&bp, hwregs.Attr{Addr: 0x2000, Len: 8, Type: hwregs.Write}); err != nil {
			panic(err)
		}
		dr0, _ := sim.ReadDR(hwregs.TargetOf(req), hwregs.RegDR0)
		fmt.Printf("policy=%s: DR%d = %#x, register writes: %d\n", hwregs.PolicyName(wp), bp.Slot.Index(), dr0, sim.Writes()-before)
	}
	// Output:
	// policy=changed: DR0 = 0x2000, register writes: 1
	// policy=all: DR0 = 0x2000, register writes: 6
}
