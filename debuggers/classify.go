package debuggers

import (
	"bpbench/hwregs"
	"bpbench/internal/enum"
)

// Outcome is what the kernel made of one debug-register write for one
// slot, inferred from the values written (see Kernel).
type Outcome uint8

const (
	// Reserved: the slot had no breakpoint and the write registered one
	// (register_user_hw_breakpoint): a slot taken from the thread's four
	// and from the machine's pool. Writing DR0-DR3 reserves a disabled
	// one; enabling an empty slot in DR7 reserves an enabled one.
	Reserved Outcome = iota
	// Enabled: DR7 enabled a held, disabled breakpoint in place.
	Enabled
	// Disabled: DR7 disabled an enabled breakpoint; it keeps its slot.
	Disabled
	// Changed: a held breakpoint's address, or an enabled one's length
	// or type, changed in place.
	Changed
	// Same: the kernel modified a held breakpoint in place
	// (modify_user_hw_breakpoint ran) but nothing about it changed.
	Same
	// Status: a DR6 write; no breakpoint is involved.
	Status
	// Refused: the kernel returned an error; nothing is inferred.
	Refused
)

var outcomeNames = [...]string{"reserved", "enabled", "disabled", "changed", "same", "status", "refused"}

// String returns the outcome's name ("reserved", "disabled"...).
func (o Outcome) String() string { return enum.Name("Outcome", outcomeNames[:], o) }

// Modifies reports whether the outcome is a modify_user_hw_breakpoint call
// on a held breakpoint.
func (o Outcome) Modifies() bool { return o == Enabled || o == Disabled || o == Changed || o == Same }

// SlotOutcome is the outcome of a write for one slot.
type SlotOutcome struct {
	Slot    int
	Outcome Outcome
}

// slotState is the kernel's ptrace breakpoint for one slot of one thread
// (thread->ptrace_bps[i]) as far as the writes tell.
type slotState struct {
	held    bool
	enabled bool
	typ     hwregs.Type
	len     int
}

// threadState is one thread's debug registers and ptrace breakpoints.
type threadState struct {
	regs  [8]uint64 // DR0-DR7 as last written successfully
	slots [hwregs.NumSlots]slotState
}

// Kernel infers, from a debugger's debug-register writes, what
// arch/x86/kernel/ptrace.c did with each, per target thread. It starts
// every thread with no ptrace breakpoint, as a freshly started target has,
// and follows the rules conform's facts probe on the running kernel:
//
//   - POKEUSER DRi (i < 4) on a slot without a breakpoint registers a
//     disabled one at that address (ptrace_set_breakpoint_addr): the slot
//     is reserved before DR7 enables it. On a held slot it modifies the
//     address in place.
//   - POKEUSER DR7 visits the four slots (ptrace_write_dr7): an empty
//     slot that DR7 enables gets a breakpoint registered (reserved); an
//     empty slot DR7 leaves disabled is skipped; every held slot is
//     modified in place (ptrace_modify_breakpoint), enabled or disabled
//     as DR7 says. DR7 = 0 disables but releases nothing.
//   - DR6 writes only set the status the thread reads back.
//   - Nothing a tracer writes releases a slot; the thread's exit or exec
//     does, which sessions never cause.
//
// A refused write changes nothing (for DR7 the kernel restores the old
// value; a first-pass registration it keeps is not modelled).
type Kernel struct {
	threads map[int]*threadState
}

// NewKernel returns a Kernel with no thread holding a breakpoint.
func NewKernel() *Kernel { return &Kernel{threads: map[int]*threadState{}} }

// stateOf returns tid's entry in m, made zero on its first use: the
// per-thread state of the models a trace is fed to (Kernel, Replay).
func stateOf[T any](m map[int]*T, tid int) *T {
	t := m[tid]
	if t == nil {
		t = new(T)
		m[tid] = t
	}
	return t
}

// Write classifies a POKEUSER of debug register reg (0-7) with val on
// thread tid; ok is false when the kernel refused it. It appends one
// SlotOutcome per slot the write touched to dst (none for a DR7 write
// that leaves every empty slot disabled) and reports whether the
// register's value changed.
func (k *Kernel) Write(dst []SlotOutcome, tid, reg int, val uint64, ok bool) ([]SlotOutcome, bool) {
	if reg < 0 || reg > 7 {
		return dst, false
	}
	if !ok {
		slot := reg
		if reg >= hwregs.NumSlots {
			slot = -1
		}
		return append(dst, SlotOutcome{slot, Refused}), false
	}
	t := stateOf(k.threads, tid)
	changed := t.regs[reg] != val
	t.regs[reg] = val
	switch {
	case reg < hwregs.NumSlots:
		s := &t.slots[reg]
		switch {
		case !s.held:
			// ptrace_set_breakpoint_addr registers a disabled stub of
			// length 1, type write.
			*s = slotState{held: true, typ: hwregs.Write, len: 1}
			dst = append(dst, SlotOutcome{reg, Reserved})
		case changed:
			dst = append(dst, SlotOutcome{reg, Changed})
		default:
			dst = append(dst, SlotOutcome{reg, Same})
		}
	case reg == hwregs.RegDR7:
		d := hwregs.DR7(val)
		for i := 0; i < hwregs.NumSlots; i++ {
			c := d.Slot(i)
			en := c.Enabled()
			s := &t.slots[i]
			switch {
			case !s.held && !en:
				continue
			case !s.held:
				*s = slotState{held: true, enabled: true, typ: c.Type, len: c.Len}
				dst = append(dst, SlotOutcome{i, Reserved})
			case en && !s.enabled:
				s.enabled, s.typ, s.len = true, c.Type, c.Len
				dst = append(dst, SlotOutcome{i, Enabled})
			case !en && s.enabled:
				// ptrace_modify_breakpoint keeps length and type when
				// it disables.
				s.enabled = false
				dst = append(dst, SlotOutcome{i, Disabled})
			case en && (s.typ != c.Type || s.len != c.Len):
				s.typ, s.len = c.Type, c.Len
				dst = append(dst, SlotOutcome{i, Changed})
			default:
				dst = append(dst, SlotOutcome{i, Same})
			}
		}
	case reg == hwregs.RegDR6:
		dst = append(dst, SlotOutcome{-1, Status})
	}
	return dst, changed
}

// Held returns how many slots thread tid holds (has a ptrace breakpoint
// registered in, enabled or not).
func (k *Kernel) Held(tid int) int {
	t := k.threads[tid]
	if t == nil {
		return 0
	}
	n := 0
	for _, s := range t.slots {
		if s.held {
			n++
		}
	}
	return n
}

// Regs returns thread tid's DR0-DR3 and DR7 as last written.
func (k *Kernel) Regs(tid int) hwregs.Regs {
	t := k.threads[tid]
	if t == nil {
		return hwregs.Regs{}
	}
	var r hwregs.Regs
	copy(r.DR[:], t.regs[:hwregs.NumSlots])
	r.DR7 = hwregs.DR7(t.regs[hwregs.RegDR7])
	return r
}

// Threads returns the thread ids the Kernel has seen a write for.
func (k *Kernel) Threads() []int {
	out := make([]int, 0, len(k.threads))
	for tid := range k.threads {
		out = append(out, tid)
	}
	return out
}
