// Package mypolicy is a register-writing policy written outside hwregs, as
// a debugger author would write their own: GDB's order on resume
// (gdb/nat/x86-dregs.c), which clears DR7 first, then writes the address
// registers that changed, then the new DR7. Importing the package
// registers it as "example-dr7-zero-first", so the registers experiment
// measures it beside the built-ins (`bpbench run --policies
// example-dr7-zero-first,changed --experiments registers`) and the Writer
// checks that its plans reach the registers asked for.
package mypolicy

import "bpbench/hwregs"

// Name is the name the policy is registered under.
const Name = "example-dr7-zero-first"

func init() {
	if err := hwregs.RegisterPolicy(Name, DR7ZeroFirst{}); err != nil {
		panic(err)
	}
}

// DR7ZeroFirst disables every slot before it touches an address register,
// so no intermediate state can enable a slot at an address it does not
// have yet, whatever the order; the price is one more DR7 write per
// change, and a moment in which no breakpoint is armed.
type DR7ZeroFirst struct{}

// Plan writes DR7 = 0 (when it is not 0 already), the changed address
// registers, and the new DR7 (when it is not 0).
func (DR7ZeroFirst) Plan(dst []hwregs.RegWrite, cur, next *hwregs.Regs) []hwregs.RegWrite {
	if cur.DR7 != 0 {
		dst = append(dst, hwregs.RegWrite{Reg: hwregs.RegDR7, Val: 0})
	}
	for i := 0; i < hwregs.NumSlots; i++ {
		if next.DR[i] != cur.DR[i] {
			dst = append(dst, hwregs.RegWrite{Reg: i, Val: next.DR[i]})
		}
	}
	if next.DR7 != 0 {
		dst = append(dst, hwregs.RegWrite{Reg: hwregs.RegDR7, Val: uint64(next.DR7)})
	}
	return dst
}
