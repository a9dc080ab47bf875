package debuggers

import (
	"fmt"

	"bpbench/hwregs"
)

// NamedPolicy is a write policy under its registered name.
type NamedPolicy struct {
	Name   string
	Policy hwregs.WritePolicy
}

// RegisteredPolicies returns every policy registered with hwregs (the
// built-in "changed" and "all" first), to replay a debugger's states
// through.
func RegisteredPolicies() ([]NamedPolicy, error) {
	var out []NamedPolicy
	for _, name := range hwregs.PolicyNames() {
		p, err := hwregs.ParsePolicy(name)
		if err != nil {
			return nil, fmt.Errorf("debuggers: policy %q: %w", name, err)
		}
		out = append(out, NamedPolicy{name, p})
	}
	return out, nil
}

// Replay runs one debugger's per-thread sequence of wanted register states
// through write policies and counts the writes each would make.
//
// A wanted state is what a run of the debugger's writes to one thread left
// in DR0-DR3 and DR7: the run ends at the debugger's next ptrace request
// on that thread of any other kind (a resume, a register read, a peek of a
// debug register, which starts Delve's next read-modify-write), or at an
// action boundary (Flush). So GDB's DR7 = 0, DRi, DR7 is one state, and
// Delve's delete-then-set inside a move is two. A run that leaves the
// registers as they were is no change, and a policy is not asked to plan
// it (the Writer would not be called). DR6 is not part of a state:
// policies do not mirror it.
type Replay struct {
	policies []NamedPolicy
	threads  map[int]*replayThread
	scratch  []hwregs.RegWrite
	// Writes counts, per policy (in the order given), the writes planned
	// since the last Take.
	writes  []int
	changes int
}

type replayThread struct {
	cur, next hwregs.Regs
	dirty     bool
}

// NewReplay returns a Replay over policies, every thread starting with
// all registers zero.
func NewReplay(policies []NamedPolicy) *Replay {
	return &Replay{policies: policies, threads: map[int]*replayThread{}, scratch: make([]hwregs.RegWrite, 0, 16), writes: make([]int, len(policies))}
}

// Call feeds one ptrace call of the debugger. Only successful
// debug-register writes build states; any other request on a thread ends
// its run of writes.
func (r *Replay) Call(c Call) {
	if !c.DRWrite() {
		r.flush(c.Tid)
		return
	}
	if !c.OK() {
		return
	}
	t := stateOf(r.threads, c.Tid)
	switch reg := c.DR(); {
	case reg < hwregs.NumSlots:
		t.next.DR[reg] = c.Data
	case reg == hwregs.RegDR7:
		t.next.DR7 = hwregs.DR7(c.Data)
	default:
		return
	}
	t.dirty = true
}

// flush ends thread tid's run of writes: if it changed the state, every
// policy plans the change.
func (r *Replay) flush(tid int) {
	t := r.threads[tid]
	if t == nil || !t.dirty {
		return
	}
	t.dirty = false
	if t.next == t.cur {
		return
	}
	r.changes++
	for i, p := range r.policies {
		r.scratch = p.Policy.Plan(r.scratch[:0], &t.cur, &t.next)
		r.writes[i] += len(r.scratch)
	}
	t.cur = t.next
}

// Flush ends every thread's run of writes (an action boundary).
func (r *Replay) Flush() {
	for tid := range r.threads {
		r.flush(tid)
	}
}

// Take returns the writes each policy planned (by policy name) and the
// number of state changes since the last Take, and resets both.
func (r *Replay) Take() (writes map[string]int, changes int) {
	writes = make(map[string]int, len(r.policies))
	for i, p := range r.policies {
		writes[p.Name] = r.writes[i]
		r.writes[i] = 0
	}
	changes, r.changes = r.changes, 0
	return writes, changes
}
