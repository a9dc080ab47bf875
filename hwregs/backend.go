package hwregs

import (
	"fmt"

	"bpbench/alloc"
)

// Target names one register file: a task's (thread's) debug registers, or a
// CPU's for CPU-bound breakpoints. It is derived from an alloc.Request, whose
// Slot.Index is unique per target.
type Target struct {
	Task int // task id, or alloc.NoTask for a CPU's registers
	CPU  int // the CPU when Task == alloc.NoTask; ignored otherwise
}

// TargetOf returns the register file a request's slot lives in.
func TargetOf(r alloc.Request) Target {
	if r.Task == alloc.NoTask {
		return Target{Task: alloc.NoTask, CPU: r.CPU}
	}
	return Target{Task: r.Task, CPU: alloc.AnyCPU}
}

// String returns "task=N" or "cpu=N".
func (t Target) String() string {
	if t.Task == alloc.NoTask {
		return fmt.Sprintf("cpu=%d", t.CPU)
	}
	return fmt.Sprintf("task=%d", t.Task)
}

// Backend is a set of debug-register files the Writer programs: simulated
// registers, or a real tracee's through ptrace. Register numbers are
// RegDR0..RegDR3, RegDR6, RegDR7.
type Backend interface {
	// Name is the backend's short name for benchmark labels ("sim", "ptrace").
	Name() string
	// WriteDR writes one debug register of target t. A failed write leaves
	// the register as it was (the kernel restores DR7 itself).
	WriteDR(t Target, reg int, val uint64) error
	// ReadDR reads one debug register of target t.
	ReadDR(t Target, reg int) (uint64, error)
	// Writes returns how many register writes the backend has performed
	// (successful or not), so update policies can be compared.
	Writes() uint64
}
