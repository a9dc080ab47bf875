package hwregs

import (
	"errors"
	"fmt"

	"bpbench/alloc"
)

// This file holds what the kernel accepts in the debug registers, as its
// ptrace path (arch/x86/kernel/ptrace.c, hw_breakpoint.c) checks it: the
// rule Sim enforces on every write and the Writer consults to order its
// writes so that every intermediate state passes. Ptrace gets it from the
// kernel itself and shares only checkReg.

// ErrBadReg is wrapped by errors for a register number that is not DR0-DR3,
// DR6 or DR7 (ptrace answers EIO for DR4 and DR5); test with errors.Is.
var ErrBadReg = errors.New("no such debug register")

// checkReg reports a register number that is not DR0-DR3, DR6 or DR7,
// wrapping ErrBadReg; Sim and Ptrace share it so both accept the same
// registers.
func checkReg(reg int) error {
	switch reg {
	case RegDR0, RegDR1, RegDR2, RegDR3, RegDR6, RegDR7:
		return nil
	}
	return fmt.Errorf("%w: DR%d (want DR0-DR3, DR6 or DR7)", ErrBadReg, reg)
}

// kernelAccepts reports why the kernel's ptrace path would refuse slot i of
// DR7 d with address addr. A disabled slot only needs a user-space address
// (ptrace registers it as a disabled 1-byte write breakpoint); an enabled one
// must be a valid Attr. Sim enforces it, and the Writer uses it to order its
// writes so that every intermediate state passes it.
func kernelAccepts(d DR7, i int, addr uint64) error {
	c := d.Slot(i)
	if !c.Enabled() {
		if addr >= MaxUserAddr {
			return fmt.Errorf("%w: DR%d = %#x: %w (not a user-space address, limit %#x)", alloc.ErrInvalid, i, addr, ErrBadAddr, uint64(MaxUserAddr))
		}
		return nil
	}
	if c.Type == 0 {
		return fmt.Errorf("%w: slot %d: RW = 10 is an I/O breakpoint: %w", alloc.ErrInvalid, i, ErrUnsupported)
	}
	if c.Type == Exec && c.Len != 1 {
		return fmt.Errorf("%w: slot %d: exec with LEN for %d bytes: %w (exec needs LEN 00)", alloc.ErrInvalid, i, c.Len, ErrBadLen)
	}
	return Attr{Addr: addr, Len: c.Len, Type: c.Type}.Validate()
}

// slotLen returns the length DR7's LEN field gives slot i, enabled or not
// (a cleared field reads as 1). It lets PlanOrder skip kernelAccepts on
// every write: an address aligned to the slot's current length is one the kernel
// accepts, since every address the Writer is asked to write was validated as an
// Attr, read back from the kernel, or is the 0 WriteAll clears with, and the
// kernel only refuses an address that is misaligned for the enabled slot.
func slotLen(d DR7, i int) uint64 {
	return [4]uint64{len1: 1, len2: 2, len8: 8, len4: 4}[(d>>(18+4*uint(i)))&3]
}
