package mypolicy_test

import (
	"testing"

	"bpbench/alloc"
	"bpbench/examples/mypolicy"
	"bpbench/hwregs"
)

// TestPolicyOnWriter drives the policy through the Writer on simulated
// registers: every change reaches the registers asked for (the Writer
// fails a plan that does not, with hwregs.ErrPlan), a move costs DR7 = 0,
// the address and the new DR7, and it is registered under its name.
func TestPolicyOnWriter(t *testing.T) {
	wp, err := hwregs.ParsePolicy(mypolicy.Name)
	if err != nil {
		t.Fatal(err)
	}
	a, err := alloc.New("mutex", alloc.X86(2))
	if err != nil {
		t.Fatal(err)
	}
	sim := hwregs.NewSim()
	w := hwregs.NewWriter(a, sim, wp)
	req := alloc.Request{Task: 1, CPU: alloc.AnyCPU, Kind: alloc.Data}
	bp, err := w.Register(req, hwregs.Attr{Addr: 0x1000, Len: 8, Type: hwregs.Write})
	if err != nil {
		t.Fatal(err)
	}
	before := sim.Writes()
	// 0x2004 is not 8-aligned: a 4-byte slot there is fine, an 8-byte one
	// would be refused; clearing DR7 first makes the order safe.
	if err := w.Modify(&bp, hwregs.Attr{Addr: 0x2004, Len: 4, Type: hwregs.Write}); err != nil {
		t.Fatal(err)
	}
	if got := sim.Writes() - before; got != 3 {
		t.Errorf("a move made %d writes, want 3 (DR7 = 0, DR0, DR7)", got)
	}
	dr0, _ := sim.ReadDR(hwregs.TargetOf(req), hwregs.RegDR0)
	dr7, _ := sim.ReadDR(hwregs.TargetOf(req), hwregs.RegDR7)
	if dr0 != 0x2004 || !hwregs.DR7(dr7).Enabled(bp.Slot.Index()) {
		t.Errorf("after the move DR0 = %#x, DR7 = %#x", dr0, dr7)
	}
	if err := w.Unregister(bp); err != nil {
		t.Fatal(err)
	}
	if dr7, _ := sim.ReadDR(hwregs.TargetOf(req), hwregs.RegDR7); dr7 != 0 {
		t.Errorf("after unregistering DR7 = %#x", dr7)
	}
}
